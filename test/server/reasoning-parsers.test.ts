// Reasoning parsers split an output into reasoning and content the same way whether it arrives whole
// or streamed in pieces split anywhere, and no `<think>` or `</think>`, whole or in part, reaches
// either channel.
import { describe, expect, test } from "bun:test";
import {
  type ReasoningOptions,
  type ReasoningParser,
  type ReasoningSplit,
  reasoningParser,
} from "../../src/server/reasoning/reasoning-parser.ts";
import { chunkings } from "../helpers/text-chunkings.ts";

function stream(parser: ReasoningParser, chunks: readonly string[], options?: ReasoningOptions) {
  const reasoningStream = parser.stream(options);
  const deltas = [...chunks.map((chunk) => reasoningStream.push(chunk)), reasoningStream.finish()];
  return {
    reasoning: deltas.map((delta) => delta.reasoning ?? "").join(""),
    content: deltas.map((delta) => delta.content ?? "").join(""),
  };
}

interface Case {
  title: string;
  text: string;
  options?: ReasoningOptions;
  split: ReasoningSplit;
}

function specify(parserName: string, cases: Case[]): void {
  describe(parserName, () => {
    const parser = reasoningParser(parserName);
    for (const { title, text, options, split } of cases) {
      test(`${title}: whole`, () => expect(parser.extract(text, options)).toEqual(split));
      test(`${title}: streamed in any pieces, the same as whole`, () => {
        const expected = { reasoning: split.reasoning ?? "", content: split.content ?? "" };
        for (const chunks of chunkings(text)) {
          expect({ chunks, ...stream(parser, chunks, options) }).toEqual({ chunks, ...expected });
        }
      });
    }
  });
}

specify("qwen3", [
  {
    title: "a think block, then the answer",
    text: "<think>\nThe user says hi; 1 < 2 and </thin is no marker.\n</think>\n\nHello!",
    split: { reasoning: "\nThe user says hi; 1 < 2 and </thin is no marker.\n", content: "\n\nHello!" },
  },
  {
    title: "no think block (thinking off)",
    text: "Hello! <think> is a tag.",
    split: { reasoning: null, content: "Hello! <think> is a tag." },
  },
  {
    title: "an unclosed think block (max_tokens)",
    text: "<think>\nStill thinking <thi",
    split: { reasoning: "\nStill thinking <thi", content: null },
  },
  {
    title: "an empty think block",
    text: "<think>\n\n</think>\n\nHi 🚀",
    split: { reasoning: null, content: "\n\nHi 🚀" },
  },
  { title: "whitespace before the think block", text: "\n <think>a</think>b", split: { reasoning: "a", content: "b" } },
  { title: "only part of <think>", text: "<thi", split: { reasoning: null, content: "<thi" } },
  { title: "empty output", text: "", split: { reasoning: null, content: null } },
  {
    title: "a block the prompt opened, when the option says so",
    text: "Reasoning.</think>Answer, then </think> as text.",
    options: { inReasoning: true },
    split: { reasoning: "Reasoning.", content: "Answer, then </think> as text." },
  },
  {
    title: "the option saying no block was opened",
    text: "Answer</think>more",
    options: { inReasoning: false },
    split: { reasoning: null, content: "Answer</think>more" },
  },
]);

specify("deepseek_r1", [
  {
    title: "reasoning then the answer",
    text: "Let me see.\n</think>\n\n42",
    split: { reasoning: "Let me see.\n", content: "\n\n42" },
  },
  { title: "a leading <think> is dropped", text: "<think>Hmm.</think>42", split: { reasoning: "Hmm.", content: "42" } },
  { title: "no </think> (max_tokens)", text: "Hmm, </think", split: { reasoning: "Hmm, </think", content: null } },
  { title: "empty output", text: "", split: { reasoning: null, content: null } },
  {
    title: "the option saying the prompt opened no block",
    text: "Plain answer.",
    options: { inReasoning: false },
    split: { reasoning: null, content: "Plain answer." },
  },
]);

describe("qwen3 without the option, on output whose <think> was in the prompt", () => {
  const text = "Reasoning.</think>Answer.";
  const parser = reasoningParser("qwen3");

  test("whole, the text before </think> is reasoning, as vLLM's parser reads it", () => {
    expect(parser.extract(text)).toEqual({ reasoning: "Reasoning.", content: "Answer." });
  });

  test("streamed, it cannot wait for </think>: the text goes out as content, without the marker", () => {
    for (const chunks of chunkings(text)) {
      expect(stream(parser, chunks)).toEqual({ reasoning: "", content: "Reasoning.Answer." });
    }
  });
});

test("streamed, reasoning goes out as it arrives, holding back only what may begin </think>", () => {
  const reasoningStream = reasoningParser("qwen3").stream();
  expect(reasoningStream.push("<thi")).toEqual({});
  expect(reasoningStream.push("nk>Step one. </")).toEqual({ reasoning: "Step one. " });
  expect(reasoningStream.push("think>\n\nDone")).toEqual({ content: "\n\nDone" });
  expect(reasoningStream.finish()).toEqual({});
});

test("each parser names its markers and where an output starts", () => {
  const summary = (parser: ReasoningParser) => [parser.startMarker, parser.endMarker, parser.startsInReasoning];
  expect(summary(reasoningParser("qwen3"))).toEqual(["<think>", "</think>", false]);
  expect(summary(reasoningParser("deepseek_r1"))).toEqual(["<think>", "</think>", true]);
});

test("an unknown parser name is an error that lists the known ones", () => {
  expect(() => reasoningParser("nope")).toThrow('unknown reasoning parser "nope"; known: qwen3, deepseek_r1');
});
