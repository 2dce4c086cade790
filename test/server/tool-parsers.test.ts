// Tool-call parsers read the same calls and content from an output whether it arrives whole or
// streamed in pieces split anywhere; streamed, calls come in OpenAI's delta order and no markup
// reaches the content.
import { describe, expect, test } from "bun:test";
import {
  type ParsedToolCall,
  type ToolCallStreamDelta,
  type ToolParser,
  toolParser,
} from "../../src/server/tool-parsers/tool-parser.ts";
import { chunkings } from "../helpers/text-chunkings.ts";

interface Streamed {
  content: string;
  toolCalls: ParsedToolCall[];
}

/** Streams the chunks and assembles the deltas, checking OpenAI's order: id and name first, once per call. */
function stream(parser: ToolParser, chunks: readonly string[]): Streamed {
  const toolStream = parser.stream();
  const deltas: ToolCallStreamDelta[] = [...chunks.map((chunk) => toolStream.push(chunk)), toolStream.finish()];
  const streamed: Streamed = { content: "", toolCalls: [] };
  for (const delta of deltas) {
    streamed.content += delta.content ?? "";
    for (const call of delta.toolCalls ?? []) {
      const known = streamed.toolCalls[call.index];
      if (known) {
        expect(call.id).toBeUndefined();
        expect(call.name).toBeUndefined();
        known.arguments += call.arguments ?? "";
      } else {
        expect(call.index).toBe(streamed.toolCalls.length);
        expect(call.id).toBeString();
        expect(call.name).toBeString();
        streamed.toolCalls[call.index] = { id: call.id!, name: call.name!, arguments: call.arguments ?? "" };
      }
    }
  }
  return streamed;
}

const withoutId = ({ name, arguments: args }: ParsedToolCall) => ({ name, arguments: args });

function expectStreamsLikeWhole(parser: ToolParser, text: string): void {
  const whole = parser.extract(text);
  for (const chunks of chunkings(text)) {
    const streamed = stream(parser, chunks);
    expect({ chunks, content: streamed.content }).toEqual({ chunks, content: whole.content ?? "" });
    expect({ chunks, calls: streamed.toolCalls.map(withoutId) }).toEqual({
      chunks,
      calls: whole.toolCalls.map(withoutId),
    });
  }
}

interface Case {
  title: string;
  text: string;
  content: string | null;
  calls: { name: string; arguments: unknown }[];
}

function specify(parserName: string, cases: Case[], idPattern: RegExp): void {
  describe(parserName, () => {
    const parser = toolParser(parserName);
    for (const { title, text, content, calls } of cases) {
      test(`${title}: whole`, () => {
        const extracted = parser.extract(text);
        expect(extracted.content).toBe(content);
        expect(extracted.toolCalls.map((call) => ({ name: call.name, arguments: JSON.parse(call.arguments) }))).toEqual(
          calls,
        );
        for (const call of extracted.toolCalls) {
          expect(call.id).toMatch(idPattern);
          // The arguments object exactly as the model wrote it.
          expect(text).toContain(call.arguments);
        }
        expect(new Set(extracted.toolCalls.map((call) => call.id)).size).toBe(calls.length);
      });
      test(`${title}: streamed in any pieces, the same as whole`, () => expectStreamsLikeWhole(parser, text));
    }
  });
}

const OPENAI_ID = /^chatcmpl-tool-[0-9a-f]{32}$/;

const tricky = {
  nested: { a: { b: [1, 2, { c: "d" }] }, empty: {}, list: [] },
  braces: "a } b { c ] [",
  quotes: 'say "hi" \\ and \\"',
  unicode: "héllo wörld 日本語 🚀",
  escapes: "\u00e9\n\t\u2028",
  number: -12.5e3,
  flags: [true, false, null],
};
const trickyJson = JSON.stringify(tricky);

specify(
  "hermes",
  [
    {
      title: "plain text",
      text: "Hello! 1 < 2, and <tool is not a tag, nor is <tool_call without its >.",
      content: "Hello! 1 < 2, and <tool is not a tag, nor is <tool_call without its >.",
      calls: [],
    },
    { title: "empty output", text: "", content: null, calls: [] },
    { title: "whitespace only", text: "\n \n", content: null, calls: [] },
    {
      title: "one call",
      text: '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n</tool_call>',
      content: null,
      calls: [{ name: "get_weather", arguments: { city: "Paris", unit: "celsius" } }],
    },
    {
      title: "content and two calls with tricky arguments",
      text: `Let me check.\n<tool_call>\n{"name": "search", "arguments": ${trickyJson}}\n</tool_call>\n<tool_call>\n{"name": "echo", "arguments": {"text": "</tool_call> then <tool_call> inside a string"}}\n</tool_call>`,
      content: "Let me check.\n\n",
      calls: [
        { name: "search", arguments: tricky },
        { name: "echo", arguments: { text: "</tool_call> then <tool_call> inside a string" } },
      ],
    },
    {
      title: "arguments before the name, spaced and indented JSON",
      text: '<tool_call>\n{\n  "arguments" : { "x" : [ 1 , 2 ] } ,\n  "name" : "f"\n}\n</tool_call>',
      content: null,
      calls: [{ name: "f", arguments: { x: [1, 2] } }],
    },
    {
      title: "a call cut off after its object (max_tokens)",
      text: 'Sure <tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_',
      content: "Sure ",
      calls: [{ name: "f", arguments: { a: 1 } }],
    },
    {
      title: "content after the calls",
      text: '<tool_call>{"name": "f", "arguments": {}}</tool_call> done.',
      content: " done.",
      calls: [{ name: "f", arguments: {} }],
    },
  ],
  OPENAI_ID,
);

specify(
  "llama3_json",
  [
    { title: "plain text", text: "The answer is {42}.", content: "The answer is {42}.", calls: [] },
    { title: "empty output", text: "", content: null, calls: [] },
    {
      title: "a JSON answer that is no call",
      text: '{"name": "John", "age": 30}',
      content: '{"name": "John", "age": 30}',
      calls: [],
    },
    {
      title: "python tag before a built-in tool's code",
      text: '<|python_tag|>brave_search.call(query="weather")',
      content: '<|python_tag|>brave_search.call(query="weather")',
      calls: [],
    },
    {
      title: "one call with parameters",
      text: ` {"name": "search", "parameters": ${trickyJson}}`,
      content: null,
      calls: [{ name: "search", arguments: tricky }],
    },
    {
      title: "python tag and two calls, arguments and an extra type key",
      text: '<|python_tag|>{"type": "function", "name": "f", "parameters": {"q": "a; b <|python_tag|> }"}}; {"name": "g", "arguments": {}}',
      content: null,
      calls: [
        { name: "f", arguments: { q: "a; b <|python_tag|> }" } },
        { name: "g", arguments: {} },
      ],
    },
  ],
  OPENAI_ID,
);

specify(
  "mistral",
  [
    {
      title: "plain text",
      text: "Use [TOOL] or [TOOL_CALL] as you like.",
      content: "Use [TOOL] or [TOOL_CALL] as you like.",
      calls: [],
    },
    { title: "empty output", text: "", content: null, calls: [] },
    {
      title: "one call in the array form",
      text: '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}}]',
      content: null,
      calls: [{ name: "get_weather", arguments: { city: "Paris" } }],
    },
    {
      title: "content and two calls in the array form",
      text: `Checking. [TOOL_CALLS][{"name": "search", "arguments": ${trickyJson}}, {"arguments": {"t": "[TOOL_CALLS] ]"}, "name": "echo"}]`,
      content: "Checking. ",
      calls: [
        { name: "search", arguments: tricky },
        { name: "echo", arguments: { t: "[TOOL_CALLS] ]" } },
      ],
    },
    {
      title: "one call in the v11 form",
      text: '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}',
      content: null,
      calls: [{ name: "get_weather", arguments: { city: "Paris" } }],
    },
    {
      title: "content and two calls in the v11 form",
      text: `Checking.[TOOL_CALLS]search[ARGS]${trickyJson}[TOOL_CALLS]echo[ARGS]{"t": "[ARGS] [TOOL_CALLS] }"}`,
      content: "Checking.",
      calls: [
        { name: "search", arguments: tricky },
        { name: "echo", arguments: { t: "[ARGS] [TOOL_CALLS] }" } },
      ],
    },
  ],
  /^[A-Za-z0-9]{9}$/,
);

describe("malformed tool calls", () => {
  const malformed: [parser: string, text: string][] = [
    ["hermes", "Text <tool_call>\nnot json\n</tool_call>"],
    ["hermes", '<tool_call>\n{"name": "f"}\n</tool_call>'],
    ["hermes", '<tool_call>\n{"name": "f", "arguments": "{}"}\n</tool_call>'],
    ["hermes", '<tool_call>\n{"name": 3, "arguments": {}}\n</tool_call>'],
    ["hermes", "Let me <tool_call>"],
    ["llama3_json", '{"parameters": {"a": 1}}'],
    ["mistral", "[TOOL_CALLS] sure!"],
    ["mistral", '[TOOL_CALLS]f(x)[ARGS]{"a": 1}'],
  ];
  const malformedAfterACall: [parser: string, text: string][] = [
    ["llama3_json", '{"name": "f", "parameters": {}} and more'],
    [
      "hermes",
      '<tool_call>{"name": "f", "arguments": {}}</tool_call><tool_call>{"name": "g", "arguments": {"a": tru}}',
    ],
    ["mistral", '[TOOL_CALLS]f[ARGS]{"a": 1} and more'],
  ];

  test.each([...malformed, ...malformedAfterACall])("%s: whole, the output is all content: %p", (parserName, text) => {
    expect(toolParser(parserName).extract(text)).toEqual({ content: text, toolCalls: [] });
  });

  test.each(malformed)(
    "%s: streamed, a block found malformed before any call was sent is content, as whole: %p",
    (parserName, text) => expectStreamsLikeWhole(toolParser(parserName), text),
  );

  test("whole, an unterminated call whose JSON is incomplete is content", () => {
    const text = 'Sure. <tool_call>\n{"name": "f", "arguments": {"a": 1';
    expect(toolParser("hermes").extract(text)).toEqual({ content: text, toolCalls: [] });
  });

  test("streamed, a call already sent stays and the rest of its malformed block is dropped", () => {
    const text = 'Hi <tool_call>\n{"name": "f", "arguments": {"a": 1}}}\n</tool_call> bye';
    expect(stream(toolParser("hermes"), text.split(""))).toEqual({
      content: "Hi ",
      toolCalls: [{ id: expect.any(String), name: "f", arguments: '{"a": 1}' }],
    });
  });

  test("streamed, a cut-off call keeps the arguments that were sent", () => {
    const text = '<tool_call>\n{"name": "f", "arguments": {"a": "lo';
    expect(stream(toolParser("hermes"), [text])).toEqual({
      content: "",
      toolCalls: [{ id: expect.any(String), name: "f", arguments: '{"a": "lo' }],
    });
  });
});

describe("streamed deltas", () => {
  test("a call's name is sent as soon as its arguments begin, and its arguments as they arrive", () => {
    const toolStream = toolParser("hermes").stream();
    expect(toolStream.push('<tool_call>\n{"name": "get_weather", "arg')).toEqual({});
    const first = toolStream.push('uments": {"city": "Pa');
    expect(first.toolCalls).toEqual([
      { index: 0, id: expect.stringMatching(OPENAI_ID), name: "get_weather", arguments: '{"city": "Pa' },
    ]);
    expect(toolStream.push('ris"}}\n</tool')).toEqual({ toolCalls: [{ index: 0, arguments: 'ris"}' }] });
    expect(toolStream.push("_call>")).toEqual({});
    expect(toolStream.finish()).toEqual({});
  });

  test("text that may begin a marker waits until it is decided", () => {
    const toolStream = toolParser("hermes").stream();
    expect(toolStream.push("a <tool")).toEqual({ content: "a " });
    expect(toolStream.push("box>")).toEqual({ content: "<toolbox>" });
    expect(toolStream.push("<")).toEqual({});
    expect(toolStream.finish()).toEqual({ content: "<" });
  });
});

test("an unknown parser name is an error that lists the known ones", () => {
  expect(() => toolParser("nope")).toThrow('unknown tool-call parser "nope"; known: hermes, llama3_json, mistral');
});
