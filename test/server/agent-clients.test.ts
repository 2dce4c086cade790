// What agent frameworks call, against the server: LangChain JS (bindTools, withStructuredOutput)
// and the Vercel AI SDK (generateObject, streamText with tools, toolChoice "required"). The model
// has random weights, so structure comes only from the grammars the server builds.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { tool as langchainTool } from "@langchain/core/tools";
import { ChatOpenAI } from "@langchain/openai";
import { generateObject, streamText, tool } from "ai";
import { z } from "zod";
import { writeRealTokenizerModel } from "../helpers/real-tokenizer-model.ts";
import { type ServerProcess, startServer } from "../helpers/server-process.ts";

let server: ServerProcess;

beforeAll(async () => {
  const model = await writeRealTokenizerModel("qwen3", { seed: 11, maxPositionEmbeddings: 1024 });
  server = await startServer(model.dir, ["--served-model-name", "tiny"]);
});

afterAll(async () => {
  await server?.stop();
});

const weatherArgs = z.object({ city: z.enum(["Paris", "Tokyo"]), days: z.number().int().min(1).max(7) });
const person = z.object({ name: z.string().max(8), age: z.number().int().min(0).max(120) });

describe("LangChain JS", () => {
  const chat = () =>
    new ChatOpenAI({
      model: "tiny",
      apiKey: "unused",
      configuration: { baseURL: `${server.url}/v1` },
      temperature: 1,
      maxTokens: 200,
      // Each run samples the same noise.
      modelKwargs: { seed: 3 },
    });
  const weather = langchainTool(async () => "sunny", {
    name: "get_weather",
    description: "The weather in a city",
    schema: weatherArgs,
  });

  test("bindTools with a required tool choice gets parsed tool calls", async () => {
    // One call: "required" with parallel calls allows a list that noise may grow to max_tokens.
    const message = await chat()
      .bindTools([weather], { tool_choice: "required", parallel_tool_calls: false })
      .invoke("Weather in Paris?");
    expect(message.tool_calls?.length).toBe(1);
    for (const call of message.tool_calls!) {
      expect(call.name).toBe("get_weather");
      expect(weatherArgs.safeParse(call.args).success).toBe(true);
    }
  });

  test("withStructuredOutput returns a value of the schema (JSON schema and function calling)", async () => {
    for (const method of ["jsonSchema", "functionCalling"] as const) {
      const value = await chat().withStructuredOutput(person, { name: "person", method }).invoke("Who are you?");
      expect(person.safeParse(value).success).toBe(true);
    }
  });
});

describe("Vercel AI SDK", () => {
  const provider = () =>
    createOpenAICompatible({
      name: "vllm-ts",
      baseURL: `${server.url}/v1`,
      apiKey: "unused",
      supportsStructuredOutputs: true,
    });

  test("generateObject", async () => {
    const { object } = await generateObject({
      model: provider()("tiny"),
      schema: person,
      prompt: "Who are you?",
      temperature: 1,
      maxOutputTokens: 200,
    });
    expect(person.safeParse(object).success).toBe(true);
  });

  test('streamText with tools and toolChoice "required"', async () => {
    const result = streamText({
      model: provider()("tiny"),
      tools: { get_weather: tool({ description: "The weather in a city", inputSchema: weatherArgs }) },
      toolChoice: "required",
      prompt: "Weather in Tokyo?",
      temperature: 1,
      // "required" allows any number of calls (parallel_tool_calls), and noise may keep adding
      // them to max_tokens: a seed makes the run one that ends.
      seed: 2,
      maxOutputTokens: 200,
    });
    const calls = await result.toolCalls;
    expect(calls.length).toBeGreaterThan(0);
    for (const call of calls) {
      expect(call.toolName).toBe("get_weather");
      expect(weatherArgs.safeParse(call.input).success).toBe(true);
    }
  });
});
