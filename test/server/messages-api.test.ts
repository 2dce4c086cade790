// Anthropic's Messages API (/v1/messages) through the official `@anthropic-ai/sdk` client, against
// the compiled server: the answer equals what chat completions give the same conversation (greedy),
// the stream's events rebuild it, stop sequences and max_tokens end it with Anthropic's stop
// reasons, tools come back as tool_use blocks, and errors arrive in Anthropic's shape.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { writeRealTokenizerModel } from "../helpers/real-tokenizer-model.ts";
import { type ServerProcess, startServer } from "../helpers/server-process.ts";
import { PERSON_SCHEMA, WEATHER_PARAMETERS } from "../helpers/tool-schemas.ts";

let server: ServerProcess;
let anthropic: Anthropic;
let openai: OpenAI;

beforeAll(async () => {
  const model = await writeRealTokenizerModel("qwen3", { seed: 7, maxPositionEmbeddings: 1024 });
  server = await startServer(model.dir, [
    "--served-model-name",
    "tiny",
    "--api-key",
    "sekret",
    "--enable-auto-tool-choice",
    "--tool-call-parser",
    "hermes",
  ]);
  anthropic = new Anthropic({ baseURL: server.url, apiKey: "sekret", maxRetries: 0 });
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "sekret", maxRetries: 0 });
});

afterAll(async () => {
  await server?.stop();
});

const weather: Anthropic.Tool = {
  name: "get_weather",
  description: "The weather in a city",
  input_schema: WEATHER_PARAMETERS,
};

/**
 * Sampling settings the API's earlier versions took and the server still honours (the current
 * client's types no longer list them, hence spread in from a variable).
 */
const GREEDY = { temperature: 0 };

const SYSTEM = "You are terse.";
const QUESTION = "What is the capital of France?";

/** The same conversation through chat completions, greedy. */
async function chatCompletion(maxTokens: number) {
  return openai.chat.completions.create({
    model: "tiny",
    messages: [
      { role: "system", content: SYSTEM },
      { role: "user", content: QUESTION },
    ],
    max_tokens: maxTokens,
    temperature: 0,
  });
}

function textOf(message: Anthropic.Message): string {
  return message.content.map((block) => (block.type === "text" ? block.text : "")).join("");
}

describe("/v1/messages", () => {
  const params = {
    model: "tiny",
    system: SYSTEM,
    messages: [{ role: "user" as const, content: QUESTION }],
    max_tokens: 12,
    ...GREEDY,
  };

  test("a message answers as chat completions does, ending at max_tokens", async () => {
    const message = await anthropic.messages.create(params);
    expect(message.type).toBe("message");
    expect(message.role).toBe("assistant");
    expect(message.id).toMatch(/^msg_/);
    expect(message.model).toBe("tiny");
    const completion = await chatCompletion(12);
    expect(textOf(message)).toBe(completion.choices[0]!.message.content!);
    expect(message.stop_reason).toBe(completion.choices[0]!.finish_reason === "length" ? "max_tokens" : "end_turn");
    expect(message.usage.input_tokens).toBe(completion.usage!.prompt_tokens);
    expect(message.usage.output_tokens).toBe(completion.usage!.completion_tokens);
  });

  test("a stream's events, in Anthropic's order, rebuild the same message", async () => {
    const whole = await anthropic.messages.create(params);
    const events: Anthropic.MessageStreamEvent[] = [];
    for await (const event of await anthropic.messages.create({ ...params, stream: true })) events.push(event);
    const types = events.map((event) => event.type);
    expect(types[0]).toBe("message_start");
    expect(types[1]).toBe("content_block_start");
    expect(types.slice(-3)).toEqual(["content_block_stop", "message_delta", "message_stop"]);
    const deltas = events.flatMap((event) =>
      event.type === "content_block_delta" && event.delta.type === "text_delta" ? [event.delta.text] : [],
    );
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join("")).toBe(textOf(whole));
    // The client's stream helper assembles the final message from the events.
    const final = await anthropic.messages.stream(params).finalMessage();
    expect(final.content as unknown).toEqual(whole.content);
    expect(final.stop_reason).toBe(whole.stop_reason);
    expect(final.usage.output_tokens).toBe(whole.usage.output_tokens);
  });

  test("a stop sequence ends the message before it, and is named", async () => {
    const free = textOf(await anthropic.messages.create(params));
    const characters = Array.from(free);
    const middle = Math.floor(characters.length / 2);
    const stop = characters.slice(middle, middle + 2).join("");
    const message = await anthropic.messages.create({ ...params, stop_sequences: ["\u0000never", stop] });
    expect(message.stop_reason).toBe("stop_sequence");
    expect(message.stop_sequence).toBe(stop);
    expect(textOf(message)).toBe(free.slice(0, free.indexOf(stop)));
  });

  test('tool_choice "any" returns tool_use blocks of the schema, whole and streamed', async () => {
    const request = {
      model: "tiny",
      messages: [{ role: "user" as const, content: "Weather in Paris?" }],
      tools: [weather],
      tool_choice: { type: "any" as const, disable_parallel_tool_use: true },
      max_tokens: 80,
      ...GREEDY,
    };
    const message = await anthropic.messages.create(request);
    expect(message.stop_reason).toBe("tool_use");
    const uses = message.content.filter((block) => block.type === "tool_use");
    expect(uses.length).toBe(1);
    expect(uses[0]!.name).toBe("get_weather");
    const input = uses[0]!.input as { city: string; days: number };
    expect(["Paris", "Tokyo"]).toContain(input.city);
    expect(Number.isInteger(input.days)).toBe(true);

    const stream = anthropic.messages.stream(request);
    const partialJson: string[] = [];
    stream.on("streamEvent", (event) => {
      if (event.type === "content_block_delta" && event.delta.type === "input_json_delta")
        partialJson.push(event.delta.partial_json);
    });
    const final = await stream.finalMessage();
    const streamed = final.content.find((block) => block.type === "tool_use")!;
    expect(partialJson.length).toBeGreaterThan(0);
    expect(streamed.type === "tool_use" && streamed.input).toEqual(JSON.parse(partialJson.join("")));
    expect(final.stop_reason).toBe("tool_use");
  });

  test('tool_choice "tool" forces the named tool', async () => {
    const message = await anthropic.messages.create({
      model: "tiny",
      messages: [{ role: "user", content: "Weather?" }],
      tools: [weather, { name: "noop", input_schema: { type: "object" } }],
      tool_choice: { type: "tool", name: "get_weather" },
      max_tokens: 80,
      ...GREEDY,
    });
    const uses = message.content.filter((block) => block.type === "tool_use");
    expect(uses.map((block) => block.name)).toEqual(["get_weather"]);
  });

  test("tool_use and tool_result blocks continue the conversation as chat's tool messages", async () => {
    const input = { city: "Paris", days: 2 };
    const message = await anthropic.messages.create({
      model: "tiny",
      messages: [
        { role: "user", content: "Weather in Paris?" },
        {
          role: "assistant",
          content: [
            { type: "text", text: "Let me check." },
            { type: "tool_use", id: "toolu_1", name: "get_weather", input },
          ],
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "toolu_1", content: [{ type: "text", text: "sunny, 24 C" }] },
            { type: "text", text: "Thanks!" },
          ],
        },
      ],
      tools: [weather],
      tool_choice: { type: "none" },
      max_tokens: 10,
      ...GREEDY,
    });
    const completion = await openai.chat.completions.create({
      model: "tiny",
      messages: [
        { role: "user", content: "Weather in Paris?" },
        {
          role: "assistant",
          content: "Let me check.",
          tool_calls: [
            { id: "toolu_1", type: "function", function: { name: "get_weather", arguments: JSON.stringify(input) } },
          ],
        },
        { role: "tool", tool_call_id: "toolu_1", content: "sunny, 24 C" },
        { role: "user", content: "Thanks!" },
      ],
      tools: [
        {
          type: "function",
          function: { name: weather.name, description: weather.description, parameters: weather.input_schema },
        },
      ],
      tool_choice: "none",
      max_tokens: 10,
      temperature: 0,
    });
    expect(textOf(message)).toBe(completion.choices[0]!.message.content!);
    expect(message.usage.input_tokens).toBe(completion.usage!.prompt_tokens);
  });

  test("output_config.format returns JSON of the schema", async () => {
    const message = await anthropic.messages.create({
      ...params,
      ...GREEDY,
      max_tokens: 60,
      output_config: { format: { type: "json_schema", schema: PERSON_SCHEMA } },
    });
    const value = JSON.parse(textOf(message)) as { name: string; age: number };
    expect(Object.keys(value).sort()).toEqual(["age", "name"]);
    expect(Number.isInteger(value.age)).toBe(true);
  });

  test("count_tokens measures the prompt the message would have", async () => {
    const counted = await anthropic.messages.countTokens({ model: "tiny", system: SYSTEM, messages: params.messages });
    const message = await anthropic.messages.create({ ...params, max_tokens: 1 });
    expect(counted.input_tokens).toBe(message.usage.input_tokens);
  });

  test("errors come in Anthropic's shape, with the right status", async () => {
    const failures: [() => Promise<unknown>, new (...args: never[]) => Error, string, RegExp][] = [
      [
        () => new Anthropic({ baseURL: server.url, apiKey: "wrong", maxRetries: 0 }).messages.create(params),
        Anthropic.AuthenticationError,
        "authentication_error",
        /invalid API key/,
      ],
      [
        () => anthropic.messages.create({ ...params, model: "nope" }),
        Anthropic.NotFoundError,
        "not_found_error",
        /nope/,
      ],
      [
        () => anthropic.messages.create({ ...params, max_tokens: undefined } as never),
        Anthropic.BadRequestError,
        "invalid_request_error",
        /max_tokens/,
      ],
      [
        () =>
          anthropic.messages.create({
            ...params,
            messages: [{ role: "user", content: [{ type: "image", source: { type: "url", url: "https://x/y.png" } }] }],
          }),
        Anthropic.BadRequestError,
        "invalid_request_error",
        /content block of type "image" is not supported/,
      ],
      [
        () => anthropic.messages.create({ ...params, thinking: { type: "enabled", budget_tokens: 1024 } }),
        Anthropic.BadRequestError,
        "invalid_request_error",
        /thinking budgets are not supported/,
      ],
      [
        () => anthropic.messages.create({ ...params, tools: [{ type: "bash_20250124", name: "bash" }] }),
        Anthropic.BadRequestError,
        "invalid_request_error",
        /custom tools only/,
      ],
    ];
    for (const [call, errorClass, type, message] of failures) {
      const error = (await call().catch((caught: unknown) => caught)) as InstanceType<typeof Anthropic.APIError>;
      expect(error).toBeInstanceOf(errorClass);
      expect((error.error as { error: { type: string } }).error.type).toBe(type);
      expect(error.message).toMatch(message);
    }
  });

  test("without an x-api-key the request is refused", async () => {
    const response = await fetch(`${server.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(params),
    });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({
      type: "error",
      error: { type: "authentication_error", message: expect.stringContaining("x-api-key") },
    });
  });
});
