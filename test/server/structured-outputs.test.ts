// Structured outputs and tool calls through the server, with the official `openai` client: a
// random-weight model with Qwen3's real tokenizer and chat template writes noise, so every output
// that parses and validates does so because the grammar allowed nothing else.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Ajv from "ajv";
import OpenAI from "openai";
import { writeRealTokenizerModel } from "../helpers/real-tokenizer-model.ts";
import { type ServerProcess, startServer } from "../helpers/server-process.ts";

let server: ServerProcess;
let client: OpenAI;
const ajv = new Ajv();

const person = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 8 },
    age: { type: "integer", minimum: 0, maximum: 120 },
    pets: { type: "array", items: { enum: ["cat", "dog"] }, maxItems: 2 },
  },
  required: ["name", "age", "pets"],
};
const weatherTool = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "The weather in a city",
    parameters: {
      type: "object",
      properties: { city: { enum: ["Paris", "Tokyo"] }, days: { type: "integer", minimum: 1, maximum: 7 } },
      required: ["city", "days"],
    },
  },
};
const timeTool = {
  type: "function" as const,
  function: {
    name: "get_time",
    parameters: { type: "object", properties: { zone: { type: "string", maxLength: 5 } }, required: ["zone"] },
  },
};
const messages = [{ role: "user" as const, content: "What is the weather in Paris?" }];
const base = { model: "tiny", messages, temperature: 1, max_tokens: 200 };

beforeAll(async () => {
  const model = await writeRealTokenizerModel("qwen3", { seed: 3, maxPositionEmbeddings: 1024 });
  server = await startServer(model.dir, [
    "--served-model-name",
    "tiny",
    "--enable-auto-tool-choice",
    "--tool-call-parser",
    "hermes",
  ]);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused" });
});

afterAll(async () => {
  await server?.stop();
});

/** vLLM's fields beside OpenAI's. */
type Extra = Record<string, unknown>;

function expectValid(schema: object, text: string): void {
  const validate = ajv.compile(schema);
  if (!validate(JSON.parse(text))) throw new Error(`${text}: ${ajv.errorsText(validate.errors)}`);
}

describe("response formats", () => {
  test("json_schema, whole and streamed, validates", async () => {
    const response_format = {
      type: "json_schema" as const,
      json_schema: { name: "person", schema: person, strict: true },
    };
    for (const seed of [1, 2]) {
      const whole = await client.chat.completions.create({ ...base, seed, response_format });
      expectValid(person, whole.choices[0]!.message.content!);
      const stream = await client.chat.completions.create({ ...base, seed, response_format, stream: true });
      let text = "";
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
      expect(text).toBe(whole.choices[0]!.message.content!);
    }
  });

  test("n > 1 constrains every choice; json_object gives objects", async () => {
    const schema = { type: "json_schema" as const, json_schema: { name: "person", schema: person } };
    const response = await client.chat.completions.create({ ...base, n: 3, seed: 4, response_format: schema });
    expect(response.choices).toHaveLength(3);
    for (const choice of response.choices) expectValid(person, choice.message.content!);
    // Any object is unbounded, so noise may run to max_tokens: such a choice is a cut object.
    const objects = await client.chat.completions.create({
      ...base,
      n: 4,
      seed: 4,
      response_format: { type: "json_object" },
    });
    for (const choice of objects.choices) {
      expect(choice.message.content!.startsWith("{")).toBe(true);
      if (choice.finish_reason === "stop") expect(JSON.parse(choice.message.content!)).toBeObject();
    }
  });

  test("vLLM's structured_outputs and guided_* fields: regex, choice, grammar", async () => {
    const regex = await client.chat.completions.create({
      ...base,
      structured_outputs: { regex: "[A-Z][a-z]{1,4} [0-9]{2}" },
    } as typeof base & Extra);
    expect(regex.choices[0]!.message.content).toMatch(/^[A-Z][a-z]{1,4} [0-9]{2}$/);
    const choice = await client.chat.completions.create({ ...base, guided_choice: ["sunny", "rainy"] } as typeof base &
      Extra);
    expect(["sunny", "rainy"]).toContain(choice.choices[0]!.message.content!);
    const grammar = await client.completions.create({
      model: "tiny",
      prompt: "2+2=",
      max_tokens: 20,
      structured_outputs: { grammar: 'root ::= [0-9] [0-9]? " apples"' },
    } as Parameters<typeof client.completions.create>[0] & Extra);
    expect((grammar as OpenAI.Completion).choices[0]!.text).toMatch(/^[0-9][0-9]? apples$/);
  });
});

describe("tool calls", () => {
  test("tool_choice required: the calls' arguments match their tools, finish_reason tool_calls", async () => {
    const response = await client.chat.completions.create({
      ...base,
      seed: 7,
      tools: [weatherTool, timeTool],
      tool_choice: "required",
    });
    const choice = response.choices[0]!;
    expect(choice.finish_reason).toBe("tool_calls");
    const calls = choice.message.tool_calls!;
    expect(calls.length).toBeGreaterThan(0);
    for (const call of calls) {
      if (call.type !== "function") throw new Error("not a function call");
      const tool = [weatherTool, timeTool].find((t) => t.function.name === call.function.name)!;
      expectValid(tool.function.parameters, call.function.arguments);
      expect(call.id).toMatch(/^chatcmpl-tool-[0-9a-f]{32}$/);
    }
  });

  test("a named tool choice, streamed: id and name first, then the arguments", async () => {
    const stream = await client.chat.completions.create({
      ...base,
      seed: 8,
      tools: [weatherTool, timeTool],
      tool_choice: { type: "function", function: { name: "get_weather" } },
      stream: true,
    });
    let args = "";
    let first: OpenAI.Chat.Completions.ChatCompletionChunk.Choice.Delta.ToolCall | null = null;
    let finish: string | null = null;
    for await (const chunk of stream) {
      const delta = chunk.choices[0];
      if (!delta) continue;
      expect(delta.delta.content ?? "").toBe("");
      for (const call of delta.delta.tool_calls ?? []) {
        first ??= call;
        args += call.function?.arguments ?? "";
      }
      finish = delta.finish_reason ?? finish;
    }
    expect(first?.id).toBeString();
    expect(first?.function?.name).toBe("get_weather");
    expectValid(weatherTool.function.parameters, args);
    expect(finish).toBe("tool_calls");
  });

  test("a tool-result turn renders through the chat template", async () => {
    const response = await client.chat.completions.create({
      ...base,
      max_tokens: 5,
      tools: [weatherTool],
      tool_choice: "none",
      messages: [
        ...messages,
        {
          role: "assistant",
          content: null,
          tool_calls: [
            {
              id: "call_1",
              type: "function",
              function: { name: "get_weather", arguments: '{"city":"Paris","days":1}' },
            },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: "sunny, 21 C" },
      ],
    });
    expect(response.choices[0]!.message.role).toBe("assistant");
    const tokenized = await fetch(`${server.url}/tokenize`, {
      method: "POST",
      body: JSON.stringify({ model: "tiny", messages: [...messages, { role: "tool", content: "sunny, 21 C" }] }),
    });
    expect(tokenized.status).toBe(200);
  });

  test("tool_choice auto with the hermes parser answers in the chat shape", async () => {
    const response = await client.chat.completions.create({ ...base, max_tokens: 20, tools: [weatherTool] });
    const { message } = response.choices[0]!;
    expect(typeof message.content === "string" || (message.tool_calls?.length ?? 0) > 0).toBe(true);
    expect(message.content ?? "").not.toContain("<tool_call>");
  });
});

describe("refused before any token", () => {
  async function status(body: object, path = "/v1/chat/completions") {
    const response = await fetch(`${server.url}${path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: "tiny", messages, ...body }),
    });
    const json = (await response.json()) as { error: { message: string; param: string | null } };
    return { ...json.error, status: response.status };
  }

  test("bad schema, regex and grammar name what is wrong", async () => {
    const schema = await status({
      response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "nonsense" } } },
    });
    expect(schema).toMatchObject({ status: 400, param: "response_format" });
    expect(schema.message).toContain('Unsupported type "nonsense"');
    const regex = await status({ structured_outputs: { regex: "[0-9" } });
    expect(regex).toMatchObject({ status: 400, param: "structured_outputs.regex" });
    expect(regex.message).toContain("Unclosed '['");
    const grammar = await status({ guided_grammar: "root ::= foo" });
    expect(grammar.status).toBe(400);
    expect(grammar.message).toContain('Rule "foo" is not defined');
    // The checker survives what it refused.
    const ok = await status({ max_tokens: 3, guided_choice: ["a"] });
    expect(ok.status).toBe(200);
  });

  test("two constraints, unknown response_format types and unsupported fields", async () => {
    expect(await status({ guided_regex: "a", response_format: { type: "json_object" } })).toMatchObject({
      status: 400,
      param: "guided_regex",
    });
    expect(await status({ response_format: { type: "yaml" } })).toMatchObject({
      status: 400,
      param: "response_format.type",
    });
    expect(await status({ audio: { voice: "alloy", format: "mp3" } })).toMatchObject({ status: 400, param: "audio" });
    expect(await status({ modalities: ["text", "audio"] })).toMatchObject({ status: 400, param: "modalities" });
    expect((await status({ max_tokens: 2, user: "u1", metadata: { a: "b" }, store: false })).status).toBe(200);
  });

  test("tool_choice naming an unknown tool, or tools missing", async () => {
    const unknown = await status({
      tools: [weatherTool],
      tool_choice: { type: "function", function: { name: "nope" } },
    });
    expect(unknown).toMatchObject({ status: 400, param: "tool_choice" });
    expect(unknown.message).toContain('"nope"');
    expect(await status({ tool_choice: "required" })).toMatchObject({ status: 400, param: "tool_choice" });
  });
});

describe("without --enable-auto-tool-choice", () => {
  let plain: ServerProcess;
  beforeAll(async () => {
    const model = await writeRealTokenizerModel("qwen3", { seed: 3 });
    plain = await startServer(model.dir, ["--served-model-name", "tiny", "--reasoning-parser", "qwen3"]);
  });
  afterAll(async () => {
    await plain?.stop();
  });

  test('tools with the default "auto" choice are refused, as vLLM does', async () => {
    const response = await fetch(`${plain.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: "tiny", messages, tools: [weatherTool] }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { message: string } }).error.message).toContain(
      "--enable-auto-tool-choice",
    );
  });

  test("with thinking off in the template, the grammar applies from the first token", async () => {
    const plainClient = new OpenAI({ baseURL: `${plain.url}/v1`, apiKey: "unused" });
    const response = await plainClient.chat.completions.create({
      ...base,
      seed: 5,
      response_format: { type: "json_schema", json_schema: { name: "person", schema: person } },
      chat_template_kwargs: { enable_thinking: false },
    } as typeof base & Extra);
    expectValid(person, response.choices[0]!.message.content!);
  });
});
