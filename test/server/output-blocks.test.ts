// The chat output's deltas as typed blocks: each block opens, grows and closes before the next,
// whatever mix of kinds a delta carries; the whole message gives the same blocks.
import { describe, expect, test } from "bun:test";
import { type BlockEvent, BlockStream, messageBlocks } from "../../src/server/output-blocks.ts";

const summary = (events: BlockEvent[]) =>
  events.map((event) => (event.type === "delta" ? `${event.index}+${event.text}` : `${event.index}:${event.type}`));

describe("BlockStream", () => {
  test("reasoning, then text, then two tool calls, each a block of its own", () => {
    const stream = new BlockStream();
    const events = [
      ...stream.push({ reasoning: "Let me " }),
      ...stream.push({ reasoning: "think.", content: "Sure" }),
      ...stream.push({ content: ", calling.", toolCalls: [{ index: 0, id: "a", name: "f", arguments: '{"x"' }] }),
      ...stream.push({ toolCalls: [{ index: 0, arguments: ": 1}" }] }),
      ...stream.push({ toolCalls: [{ index: 1, id: "b", name: "g", arguments: "{}" }] }),
      ...stream.finish(),
    ];
    expect(summary(events)).toEqual([
      "0:start",
      "0+Let me ",
      "0+think.",
      "0:stop",
      "1:start",
      "1+Sure",
      "1+, calling.",
      "1:stop",
      "2:start",
      '2+{"x"',
      "2+: 1}",
      "2:stop",
      "3:start",
      "3+{}",
      "3:stop",
    ]);
    expect(stream.blocks).toEqual([
      { kind: "reasoning", text: "Let me think." },
      { kind: "text", text: "Sure, calling." },
      { kind: "tool_call", id: "a", name: "f", text: '{"x": 1}' },
      { kind: "tool_call", id: "b", name: "g", text: "{}" },
    ]);
    expect(
      messageBlocks({
        reasoning: "Let me think.",
        content: "Sure, calling.",
        toolCalls: [
          { id: "a", name: "f", arguments: '{"x": 1}' },
          { id: "b", name: "g", arguments: "{}" },
        ],
      }),
    ).toEqual(stream.blocks);
  });

  test("text after a tool call opens a new text block; a call's arguments after that are a bug", () => {
    const stream = new BlockStream();
    stream.push({ toolCalls: [{ index: 0, id: "a", name: "f", arguments: "{}" }] });
    expect(summary(stream.push({ content: "done" }))).toEqual(["0:stop", "1:start", "1+done"]);
    expect(() => stream.push({ toolCalls: [{ index: 0, arguments: "}" }] })).toThrow(/after its block closed/);
  });

  test("an empty answer has no blocks, and finishing twice closes nothing twice", () => {
    const stream = new BlockStream();
    expect(stream.push({})).toEqual([]);
    expect(stream.finish()).toEqual([]);
    expect(messageBlocks({ reasoning: null, content: null, toolCalls: [] })).toEqual([]);
  });
});
