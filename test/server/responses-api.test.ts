// OpenAI's Responses API (/v1/responses) through the official `openai` client, against the
// compiled server: the answer equals what chat completions give the same conversation (greedy),
// streamed events rebuild the same response, json_schema and function tools are enforced by
// grammars, and fields a stateless text-only server cannot honour are refused.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { writeRealTokenizerModel } from "../helpers/real-tokenizer-model.ts";
import { type ServerProcess, startServer } from "../helpers/server-process.ts";
import { PERSON_SCHEMA, WEATHER_PARAMETERS } from "../helpers/tool-schemas.ts";

let server: ServerProcess;
let client: OpenAI;

beforeAll(async () => {
  const model = await writeRealTokenizerModel("qwen3", { seed: 5, maxPositionEmbeddings: 1024 });
  server = await startServer(model.dir, ["--served-model-name", "tiny", "--api-key", "sekret"]);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "sekret", maxRetries: 0 });
});

afterAll(async () => {
  await server?.stop();
});

const weather = {
  type: "function" as const,
  name: "get_weather",
  description: "The weather in a city",
  strict: true,
  parameters: WEATHER_PARAMETERS,
};

/** The same conversation through chat completions, greedy. */
async function chatText(messages: OpenAI.ChatCompletionMessageParam[], maxTokens: number): Promise<string> {
  const completion = await client.chat.completions.create({
    model: "tiny",
    messages,
    max_tokens: maxTokens,
    temperature: 0,
  });
  return completion.choices[0]!.message.content ?? "";
}

describe("/v1/responses", () => {
  test("a string input with instructions answers as chat completions does", async () => {
    const response = await client.responses.create({
      model: "tiny",
      instructions: "Answer briefly.",
      input: "What is the capital of France?",
      max_output_tokens: 12,
      temperature: 0,
    });
    expect(response.object).toBe("response");
    expect(response.id).toMatch(/^resp_/);
    expect(response.model).toBe("tiny");
    // Random weights rarely stop within 12 tokens: cut short, as the status says.
    expect(["completed", "incomplete"]).toContain(response.status ?? "");
    if (response.status === "incomplete") expect(response.incomplete_details?.reason ?? "").toBe("max_output_tokens");
    const message = response.output.find((item) => item.type === "message")!;
    expect(message.role).toBe("assistant");
    const expected = await chatText(
      [
        { role: "system", content: "Answer briefly." },
        { role: "user", content: "What is the capital of France?" },
      ],
      12,
    );
    expect(response.output_text).toBe(expected);
    expect(response.usage!.output_tokens).toBeGreaterThan(0);
    expect(response.usage!.total_tokens).toBe(response.usage!.input_tokens + response.usage!.output_tokens);
    // Nothing is stored, and the response says so.
    expect((response as unknown as { store: boolean }).store).toBe(false);
  });

  test("message items with text parts and a developer role read as the chat messages", async () => {
    const response = await client.responses.create({
      model: "tiny",
      input: [
        { role: "developer", content: "Be terse." },
        { type: "message", role: "user", content: [{ type: "input_text", text: "Hi" }] },
        { role: "assistant", content: [{ type: "output_text", text: "Hello." }] },
        { role: "user", content: "And now?" },
      ],
      max_output_tokens: 8,
      temperature: 0,
    } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    const expected = await chatText(
      [
        { role: "system", content: "Be terse." },
        { role: "user", content: "Hi" },
        { role: "assistant", content: "Hello." },
        { role: "user", content: "And now?" },
      ],
      8,
    );
    expect(response.output_text).toBe(expected);
  });

  test("a stream's typed events, in order and numbered, rebuild the same response", async () => {
    const params = { model: "tiny", input: "Tell me a story.", max_output_tokens: 16, temperature: 0 };
    const whole = await client.responses.create(params);
    const stream = await client.responses.create({ ...params, stream: true });
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    expect(events.map((event) => event.sequence_number)).toEqual(events.map((_, i) => i));
    const types = events.map((event) => event.type);
    expect(types.slice(0, 4)).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
    ]);
    expect(types.at(-1)).toBe(whole.status === "incomplete" ? "response.incomplete" : "response.completed");
    const deltas = events.filter((event) => event.type === "response.output_text.delta");
    expect(deltas.length).toBeGreaterThan(1);
    const text = deltas.map((event) => event.delta).join("");
    expect(text).toBe(whole.output_text);
    const done = events.find((event) => event.type === "response.output_text.done");
    expect(done?.type === "response.output_text.done" && done.text).toBe(text);
    const last = events.at(-1) as OpenAI.Responses.ResponseCompletedEvent;
    expect(last.response.output).toEqual(
      whole.output.map((item) => ({ ...item, id: expect.stringMatching(/^msg_/) })) as never,
    );
    // The client's own stream helper accepts the events and assembles the final response.
    const helper = client.responses.stream(params);
    const final = await helper.finalResponse();
    expect(final.output_text).toBe(whole.output_text);
  });

  test("text.format json_schema returns JSON of the schema", async () => {
    const response = await client.responses.create({
      model: "tiny",
      input: "Who are you?",
      max_output_tokens: 60,
      temperature: 0,
      text: { format: { type: "json_schema", name: "person", schema: PERSON_SCHEMA, strict: true } },
    });
    const value = JSON.parse(response.output_text) as { name: string; age: number };
    expect(Object.keys(value).sort()).toEqual(["age", "name"]);
    expect(Number.isInteger(value.age)).toBe(true);
  });

  test("a required function tool comes back as function_call items, whole and streamed", async () => {
    const params = {
      model: "tiny",
      input: "Weather in Paris?",
      tools: [weather],
      tool_choice: "required" as const,
      parallel_tool_calls: false,
      max_output_tokens: 80,
      temperature: 0,
    };
    const response = await client.responses.create(params);
    const calls = response.output.filter((item) => item.type === "function_call");
    expect(calls.length).toBe(1);
    const call = calls[0]!;
    expect(call.name).toBe("get_weather");
    expect(call.id).toMatch(/^fc_/);
    const args = JSON.parse(call.arguments) as { city: string; days: number };
    expect(["Paris", "Tokyo"]).toContain(args.city);

    const stream = client.responses.stream(params);
    const argumentDeltas: string[] = [];
    stream.on("response.function_call_arguments.delta", (event) => argumentDeltas.push(event.delta));
    const final = await stream.finalResponse();
    const streamedCall = final.output.find((item) => item.type === "function_call")!;
    expect(streamedCall.type === "function_call" && argumentDeltas.join("")).toBe(
      streamedCall.type === "function_call" ? streamedCall.arguments : "",
    );
    expect(argumentDeltas.length).toBeGreaterThan(0);
  });

  test("function_call and function_call_output items continue the conversation as chat's tool messages", async () => {
    const args = '{"city": "Paris", "days": 2}';
    const response = await client.responses.create({
      model: "tiny",
      input: [
        { role: "user", content: "Weather in Paris?" },
        { type: "function_call", call_id: "call_1", name: "get_weather", arguments: args },
        { type: "function_call_output", call_id: "call_1", output: "sunny, 24 C" },
      ],
      tools: [weather],
      tool_choice: "none",
      max_output_tokens: 10,
      temperature: 0,
    });
    const completion = await client.chat.completions.create({
      model: "tiny",
      messages: [
        { role: "user", content: "Weather in Paris?" },
        {
          role: "assistant",
          content: "",
          tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: args } }],
        },
        { role: "tool", tool_call_id: "call_1", content: "sunny, 24 C" },
      ],
      tools: [
        {
          type: "function",
          function: {
            name: weather.name,
            description: weather.description,
            parameters: weather.parameters,
            strict: true,
          },
        },
      ],
      tool_choice: "none",
      max_tokens: 10,
      temperature: 0,
    });
    expect(response.output_text).toBe(completion.choices[0]!.message.content!);
    expect(response.usage!.input_tokens).toBe(completion.usage!.prompt_tokens);
  });

  test("what a stateless text-only server cannot do is refused in OpenAI's error shape", async () => {
    const refused: [object, RegExp][] = [
      [{ previous_response_id: "resp_123" }, /stores no responses/],
      [{ tools: [{ type: "web_search" }] }, /function tools only/],
      [{ input: [{ role: "user", content: [{ type: "input_image", image_url: "https://x/y.png" }] }] }, /text-only/],
      [{ reasoning: { effort: "high" } }, /reasoning settings are not supported/],
      [{ text: { verbosity: "low" } }, /text.verbosity is not supported/],
      [{ input: [{ type: "item_reference", id: "msg_1" }] }, /input/],
    ];
    for (const [fields, message] of refused) {
      const error = await client.responses
        .create({ model: "tiny", input: "Hi", max_output_tokens: 4, ...fields } as never)
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      expect((error as Error).message).toMatch(message);
    }
    const unknownModel = await client.responses
      .create({ model: "nope", input: "Hi" })
      .catch((caught: unknown) => caught);
    expect(unknownModel).toBeInstanceOf(OpenAI.NotFoundError);
  });

  test("the API key is required", async () => {
    const anonymous = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "wrong", maxRetries: 0 });
    const error = await anonymous.responses.create({ model: "tiny", input: "Hi" }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
  });
});
