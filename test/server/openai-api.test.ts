// The server through the official `openai` client: every response has OpenAI's shape, streamed
// text equals the non-streamed text, and the sampling options do what they promise.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { type ServerProcess, startServer, writeServerTestModel } from "../helpers/server-process.ts";

let server: ServerProcess;
let client: OpenAI;
const model = "tiny-qwen";
const messages = [{ role: "user" as const, content: "hello world" }];

beforeAll(async () => {
  server = await startServer(await writeServerTestModel(), ["--served-model-name", model]);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused" });
});

afterAll(async () => {
  await server?.stop();
});

interface Tokenized {
  count: number;
  max_model_len: number;
  tokens: number[];
}

async function tokenize(body: object): Promise<Tokenized> {
  return (await (
    await fetch(`${server.url}/tokenize`, { method: "POST", body: JSON.stringify(body) })
  ).json()) as Tokenized;
}

/** vLLM's sampling extras travel in the body beside OpenAI's fields. */
type WithExtras<T> = T & Record<string, unknown>;

describe("models and server info", () => {
  test("GET /v1/models lists the served name with its max model len", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([model]);
    expect((models.data[0] as unknown as { max_model_len: number }).max_model_len).toBe(512);
  });

  test("GET /health and /version answer", async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect(await (await fetch(`${server.url}/version`)).json()).toEqual({ version: expect.any(String) });
  });

  test("start-up logs name the model, the KV cache in blocks and tokens, and the URL", () => {
    expect(server.logs()).toMatch(/KV cache: \d+ blocks of 16 tokens \(\d+ tokens/);
    expect(server.logs()).toContain("Qwen3ForCausalLM");
    expect(server.logs()).toContain(`${server.url}/v1`);
  });
});

describe("/v1/completions", () => {
  test("a completion has a cmpl- id, text, finish_reason length and exact usage", async () => {
    const completion = await client.completions.create({
      model,
      prompt: "hello world",
      max_tokens: 12,
      temperature: 0,
      ignore_eos: true,
    } as WithExtras<OpenAI.CompletionCreateParamsNonStreaming>);
    expect(completion.id).toMatch(/^cmpl-[0-9a-f]{32}$/);
    expect(completion.object).toBe("text_completion");
    expect(completion.choices).toHaveLength(1);
    expect(completion.choices[0]!.finish_reason).toBe("length");
    const promptTokens = (await tokenize({ prompt: "hello world" })).count;
    expect(completion.usage).toEqual({
      prompt_tokens: promptTokens,
      completion_tokens: 12,
      total_tokens: promptTokens + 12,
    });
  });

  test("streamed text equals the non-streamed text at temperature 0, and include_usage reports it", async () => {
    const params = { model, prompt: "the cat", max_tokens: 20, temperature: 0 };
    const whole = await client.completions.create(params);
    const stream = await client.completions.create({
      ...params,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | null | undefined;
    let finishReason: string | null = null;
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        text += choice.text;
        finishReason = choice.finish_reason ?? finishReason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(whole.choices[0]!.text);
    expect(finishReason).toBe(whole.choices[0]!.finish_reason);
    expect(usage).toEqual(whole.usage!);
  });

  test("n > 1 gives n choices indexed 0..n-1, usage summed over them", async () => {
    const completion = await client.completions.create({
      model,
      prompt: "hello",
      n: 3,
      max_tokens: 5,
      temperature: 1,
      seed: 1,
      ignore_eos: true,
    } as WithExtras<OpenAI.CompletionCreateParamsNonStreaming>);
    expect(completion.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(completion.usage!.completion_tokens).toBe(15);
  });

  test("a batch of prompts gives one choice per prompt in order, each as when asked alone", async () => {
    const prompts = ["hello", "the world"];
    const batch = await client.completions.create({ model, prompt: prompts, max_tokens: 6, temperature: 0 });
    const alone = await Promise.all(
      prompts.map((prompt) => client.completions.create({ model, prompt, max_tokens: 6, temperature: 0 })),
    );
    expect(batch.choices.map((c) => c.text)).toEqual(alone.map((c) => c.choices[0]!.text));
    expect(batch.usage!.prompt_tokens).toBe(alone.reduce((sum, c) => sum + c.usage!.prompt_tokens, 0));
  });

  test("token-id prompts and echo: the prompt text comes back before the completion", async () => {
    const { tokens } = await tokenize({ prompt: "hello there" });
    const byIds = await client.completions.create({ model, prompt: tokens, max_tokens: 6, temperature: 0, echo: true });
    const byText = await client.completions.create({ model, prompt: "hello there", max_tokens: 6, temperature: 0 });
    expect(byIds.choices[0]!.text).toBe(`hello there${byText.choices[0]!.text}`);
  });

  test("a stop string ends the text before it, with finish_reason stop and the string as stop_reason", async () => {
    const params = { model, prompt: "hello world", max_tokens: 24, temperature: 0, ignore_eos: true };
    const full = (await client.completions.create(params as WithExtras<OpenAI.CompletionCreateParamsNonStreaming>))
      .choices[0]!.text;
    const stop = full.slice(6, 8);
    const stopped = (
      await client.completions.create({ ...params, stop } as WithExtras<OpenAI.CompletionCreateParamsNonStreaming>)
    ).choices[0]!;
    expect(stopped.text).toBe(full.slice(0, full.indexOf(stop)));
    expect(stopped.finish_reason).toBe("stop");
    expect((stopped as unknown as { stop_reason: string }).stop_reason).toBe(stop);
    const kept = (
      await client.completions.create({
        ...params,
        stop,
        include_stop_str_in_output: true,
      } as WithExtras<OpenAI.CompletionCreateParamsNonStreaming>)
    ).choices[0]!;
    expect(kept.text).toBe(full.slice(0, full.indexOf(stop) + stop.length));
  });

  test("logprobs: k gives OpenAI's parallel arrays, one entry per generated token", async () => {
    const completion = await client.completions.create({
      model,
      prompt: "hello",
      max_tokens: 6,
      temperature: 0,
      logprobs: 2,
      ignore_eos: true,
    } as WithExtras<OpenAI.CompletionCreateParamsNonStreaming>);
    const logprobs = completion.choices[0]!.logprobs!;
    expect(logprobs.tokens).toHaveLength(6);
    expect(logprobs.token_logprobs).toHaveLength(6);
    expect(logprobs.text_offset).toHaveLength(6);
    expect(logprobs.top_logprobs).toHaveLength(6);
    for (const [i, top] of logprobs.top_logprobs!.entries()) {
      expect(logprobs.token_logprobs![i]!).toBeLessThanOrEqual(0);
      // Greedy: the chosen token is the most likely one, so it is among the top two.
      expect(Math.max(...Object.values(top))).toBeCloseTo(logprobs.token_logprobs![i]!, 5);
    }
  });

  test("the same seed reproduces a sampled completion", async () => {
    const params = { model, prompt: "hello", max_tokens: 16, temperature: 1, seed: 1234, ignore_eos: true };
    const first = await client.completions.create(params as WithExtras<OpenAI.CompletionCreateParamsNonStreaming>);
    const second = await client.completions.create(params as WithExtras<OpenAI.CompletionCreateParamsNonStreaming>);
    expect(second.choices[0]!.text).toBe(first.choices[0]!.text);
  });

  test("the default max_tokens is the rest of the context", async () => {
    const completion = await client.completions.create({
      model,
      prompt: "hello",
      temperature: 0,
      ignore_eos: true,
    } as WithExtras<OpenAI.CompletionCreateParamsNonStreaming>);
    expect(completion.usage!.prompt_tokens + completion.usage!.completion_tokens).toBe(512);
    expect(completion.choices[0]!.finish_reason).toBe("length");
  });
});

describe("/v1/chat/completions", () => {
  test("a chat completion has a chatcmpl- id, an assistant message and usage of the templated prompt", async () => {
    const chat = await client.chat.completions.create({
      model,
      messages,
      max_completion_tokens: 8,
      temperature: 0,
      ignore_eos: true,
    } as WithExtras<OpenAI.ChatCompletionCreateParamsNonStreaming>);
    expect(chat.id).toMatch(/^chatcmpl-[0-9a-f]{32}$/);
    expect(chat.choices[0]!.message.role).toBe("assistant");
    const templated = await tokenize({ messages });
    expect(chat.usage).toEqual({
      prompt_tokens: templated.count,
      completion_tokens: 8,
      total_tokens: templated.count + 8,
    });
  });

  test("the prompt is the chat template's rendering, encoded without extra special tokens", async () => {
    const rendered =
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhello world<|im_end|>\n<|im_start|>assistant\n";
    const chat = await client.chat.completions.create({ model, messages, max_tokens: 8, temperature: 0 });
    const completion = await client.completions.create({ model, prompt: rendered, max_tokens: 8, temperature: 0 });
    expect(chat.choices[0]!.message.content).toBe(completion.choices[0]!.text);
    expect(chat.usage!.prompt_tokens).toBe(completion.usage!.prompt_tokens);
  });

  test("a stream opens with the assistant role, its content equals the non-streamed message, usage comes last", async () => {
    const params = { model, messages, max_tokens: 16, temperature: 0, n: 2 };
    const whole = await client.chat.completions.create(params);
    const stream = await client.chat.completions.create({
      ...params,
      stream: true,
      stream_options: { include_usage: true },
    });
    const content = ["", ""];
    const roles: string[] = [];
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        if (choice.delta.role) roles.push(choice.delta.role);
        content[choice.index] += choice.delta.content ?? "";
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(roles).toEqual(["assistant", "assistant"]);
    expect(content).toEqual(whole.choices.map((c) => c.message.content ?? ""));
    expect(usage).toEqual(whole.usage!);
  });

  test("logprobs with top_logprobs gives a record per token with its top candidates", async () => {
    const chat = await client.chat.completions.create({
      model,
      messages,
      max_tokens: 5,
      temperature: 0,
      logprobs: true,
      top_logprobs: 3,
      ignore_eos: true,
    } as WithExtras<OpenAI.ChatCompletionCreateParamsNonStreaming>);
    const content = chat.choices[0]!.logprobs!.content!;
    expect(content).toHaveLength(5);
    for (const token of content) {
      expect(token.top_logprobs).toHaveLength(3);
      expect(token.bytes).toEqual([...new TextEncoder().encode(token.token)]);
      expect(token.top_logprobs[0]!.logprob).toBeCloseTo(token.logprob, 5);
    }
  });
});

describe("/tokenize and /detokenize", () => {
  test("text survives a round trip", async () => {
    const text = "hello world, the cat is here";
    const tokenized = await tokenize({ prompt: text });
    expect(tokenized).toEqual({ count: tokenized.tokens.length, max_model_len: 512, tokens: expect.any(Array) });
    const detokenized = await (
      await fetch(`${server.url}/detokenize`, { method: "POST", body: JSON.stringify({ tokens: tokenized.tokens }) })
    ).json();
    expect(detokenized).toEqual({ prompt: text });
  });
});
