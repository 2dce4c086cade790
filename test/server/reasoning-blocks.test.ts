// A model's reasoning (--reasoning-parser) as the Responses API's reasoning items and Anthropic's
// thinking blocks, whole and streamed, through both official clients. Under deepseek_r1 the
// output starts as reasoning, so a random model's whole answer is reasoning: the same text that
// chat completions return as reasoning_content.
import { afterAll, beforeAll, expect, test } from "bun:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { writeRealTokenizerModel } from "../helpers/real-tokenizer-model.ts";
import { type ServerProcess, startServer } from "../helpers/server-process.ts";

let server: ServerProcess;
let openai: OpenAI;
let anthropic: Anthropic;
let reasoning: string;

const QUESTION = "Why is the sky blue?";
const MAX_TOKENS = 12;
const GREEDY = { temperature: 0 };

beforeAll(async () => {
  const model = await writeRealTokenizerModel("qwen3", { seed: 9, maxPositionEmbeddings: 1024 });
  server = await startServer(model.dir, ["--served-model-name", "tiny", "--reasoning-parser", "deepseek_r1"]);
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: server.url, apiKey: "unused", maxRetries: 0 });
  const completion = await openai.chat.completions.create({
    model: "tiny",
    messages: [{ role: "user", content: QUESTION }],
    max_tokens: MAX_TOKENS,
    ...GREEDY,
  });
  reasoning = (completion.choices[0]!.message as { reasoning_content?: string }).reasoning_content ?? "";
  expect(reasoning.length).toBeGreaterThan(0);
});

afterAll(async () => {
  await server?.stop();
});

test("the Responses API returns the reasoning as a reasoning item, whole and streamed", async () => {
  const params = { model: "tiny", input: QUESTION, max_output_tokens: MAX_TOKENS, ...GREEDY };
  const response = await openai.responses.create(params);
  expect(response.output.map((item) => item.type)).toEqual(["reasoning"]);
  const item = response.output[0] as OpenAI.Responses.ResponseReasoningItem;
  expect(item.id).toMatch(/^rs_/);
  expect(item.content).toEqual([{ type: "reasoning_text", text: reasoning }]);
  expect(response.output_text).toBe("");

  const stream = openai.responses.stream(params);
  const deltas: string[] = [];
  stream.on("response.reasoning_text.delta", (event) => deltas.push(event.delta));
  const final = await stream.finalResponse();
  expect(deltas.length).toBeGreaterThan(1);
  expect(deltas.join("")).toBe(reasoning);
  expect((final.output[0] as OpenAI.Responses.ResponseReasoningItem).content).toEqual(item.content);
});

test("the Messages API returns the reasoning as a thinking block, whole and streamed", async () => {
  const params = {
    model: "tiny",
    messages: [{ role: "user" as const, content: QUESTION }],
    max_tokens: MAX_TOKENS,
    ...GREEDY,
  };
  const message = await anthropic.messages.create(params);
  expect(message.content).toEqual([{ type: "thinking", thinking: reasoning, signature: "" }]);

  const stream = anthropic.messages.stream(params);
  const deltas: string[] = [];
  stream.on("thinking", (delta) => deltas.push(delta));
  const final = await stream.finalMessage();
  expect(deltas.length).toBeGreaterThan(1);
  expect(deltas.join("")).toBe(reasoning);
  expect(final.content as unknown).toEqual(message.content);
});

test("earlier reasoning sent back goes to the template as the assistant's reasoning_content", async () => {
  // Qwen3's template shows the reasoning of the turns after the last user message: here, the turn
  // that called a tool. Both APIs must render the prompt chat completions renders.
  const thought = "The user wants the weather; I should call the tool.";
  const call = { id: "call_1", name: "get_weather", arguments: '{"city": "Paris"}' };
  const chatPromptTokens = async (withReasoning: boolean) => {
    const completion = await openai.chat.completions.create({
      model: "tiny",
      messages: [
        { role: "user", content: QUESTION },
        {
          role: "assistant",
          content: "",
          ...(withReasoning ? { reasoning_content: thought } : {}),
          tool_calls: [{ id: call.id, type: "function", function: { name: call.name, arguments: call.arguments } }],
        } as never,
        { role: "tool", tool_call_id: call.id, content: "sunny" },
      ],
      max_tokens: 1,
    });
    return completion.usage!.prompt_tokens;
  };
  const expected = await chatPromptTokens(true);
  expect(expected).toBeGreaterThan(await chatPromptTokens(false));

  const message = await anthropic.messages.create({
    model: "tiny",
    max_tokens: 1,
    messages: [
      { role: "user", content: QUESTION },
      {
        role: "assistant",
        content: [
          { type: "thinking", thinking: thought, signature: "" },
          { type: "tool_use", id: call.id, name: call.name, input: JSON.parse(call.arguments) },
        ],
      },
      { role: "user", content: [{ type: "tool_result", tool_use_id: call.id, content: "sunny" }] },
    ],
  });
  expect(message.usage.input_tokens).toBe(expected);

  const response = await openai.responses.create({
    model: "tiny",
    max_output_tokens: 1,
    input: [
      { role: "user", content: QUESTION },
      { type: "reasoning", id: "rs_1", summary: [], content: [{ type: "reasoning_text", text: thought }] },
      { type: "function_call", call_id: call.id, name: call.name, arguments: call.arguments },
      { type: "function_call_output", call_id: call.id, output: "sunny" },
    ] as OpenAI.Responses.ResponseInput,
  });
  expect(response.usage!.input_tokens).toBe(expected);
});
