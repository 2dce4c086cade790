// The server under load and under clients that leave: concurrent streams are batched without
// changing greedy results, and a client that disconnects mid-stream frees its KV blocks at once.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import { metricValue, type ServerProcess, startServer, writeServerTestModel } from "../helpers/server-process.ts";

let server: ServerProcess;
let client: OpenAI;
const model = "tiny";

beforeAll(async () => {
  server = await startServer(await writeServerTestModel(), ["--served-model-name", model]);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused" });
});

afterAll(async () => {
  await server?.stop();
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await Bun.sleep(20);
  }
}

describe("load", () => {
  test("64 concurrent streams all complete and equal their sequential results at temperature 0", async () => {
    const prompts = Array.from({ length: 64 }, (_, i) => `hello ${"the world ".repeat(i % 5)}${i}`);
    const params = (prompt: string) => ({ prompt, max_tokens: 24, temperature: 0, model, ignore_eos: true });
    const sequential: string[] = [];
    for (const prompt of prompts) {
      sequential.push(
        (await client.completions.create(params(prompt) as OpenAI.CompletionCreateParamsNonStreaming)).choices[0]!.text,
      );
    }
    const concurrent = await Promise.all(
      prompts.map(async (prompt) => {
        let text = "";
        const stream = await client.completions.create({
          ...params(prompt),
          stream: true,
        } as OpenAI.CompletionCreateParamsStreaming);
        for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
        return text;
      }),
    );
    expect(concurrent).toEqual(sequential);
    expect(await metricValue(server.url, "vllm:num_requests_running")).toBe(0);
  });

  test("the HTTP thread answers /health while the engine decodes a long stream", async () => {
    const response = await fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prompt: "keep going", max_tokens: 400, ignore_eos: true, stream: true, model }),
    });
    const reader = response.body!.getReader();
    await reader.read();
    let streamDone = false;
    const drained = (async () => {
      while (!(await reader.read()).done);
      streamDone = true;
    })();
    // Ordering, not timing: twenty health checks complete while the decode is still running.
    for (let i = 0; i < 20; i++) expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect(streamDone).toBe(false);
    await drained;
  });

  test("a client that disconnects mid-stream has its request aborted and its KV blocks freed", async () => {
    const controller = new AbortController();
    const response = await fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prompt: "hello world", max_tokens: 480, ignore_eos: true, stream: true }),
      signal: controller.signal,
    });
    const reader = response.body!.getReader();
    await reader.read();
    expect(await metricValue(server.url, "vllm:num_requests_running")).toBe(1);
    expect(await metricValue(server.url, "vllm:kv_cache_usage_perc")).toBeGreaterThan(0);
    controller.abort();
    await waitFor(async () => (await metricValue(server.url, "vllm:kv_cache_usage_perc")) === 0);
    expect(await metricValue(server.url, "vllm:num_requests_running")).toBe(0);
    expect(await metricValue(server.url, "vllm:num_requests_waiting")).toBe(0);
  });

  test("a client that disconnects from a non-streaming request has it aborted too", async () => {
    const controller = new AbortController();
    const pending = fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "hi" }], max_tokens: 400, ignore_eos: true }),
      signal: controller.signal,
    }).catch(() => null);
    await waitFor(async () => (await metricValue(server.url, "vllm:num_requests_running")) === 1);
    controller.abort();
    await pending;
    await waitFor(async () => (await metricValue(server.url, "vllm:kv_cache_usage_perc")) === 0);
    expect(await metricValue(server.url, "vllm:num_requests_running")).toBe(0);
  });

  test("/metrics counts the tokens and latencies of served requests", async () => {
    const before = await metricValue(server.url, "vllm:generation_tokens_total");
    await client.completions.create({
      model,
      prompt: "hello",
      max_tokens: 7,
      ignore_eos: true,
    } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(await metricValue(server.url, "vllm:generation_tokens_total")).toBe(before + 7);
    const text = await (await fetch(`${server.url}/metrics`)).text();
    for (const name of [
      "vllm:time_to_first_token_seconds",
      "vllm:inter_token_latency_seconds",
      "vllm:e2e_request_latency_seconds",
      "vllm:request_queue_time_seconds",
      "vllm:request_prefill_time_seconds",
      "vllm:request_decode_time_seconds",
      "vllm:request_inference_time_seconds",
      "vllm:request_time_per_output_token_seconds",
      "vllm:request_prompt_tokens",
      "vllm:request_generation_tokens",
      "vllm:iteration_tokens_total",
    ]) {
      expect(text).toContain(`# TYPE ${name} histogram`);
      expect(Number(/_count\{[^}]*\} (\d+)/.exec(text.slice(text.indexOf(`${name}_count`)))![1])).toBeGreaterThan(0);
    }
    for (const name of [
      "vllm:prompt_tokens_total",
      "vllm:num_requests_waiting",
      "vllm:prefix_cache_queries_total",
      "vllm:prefix_cache_hits_total",
      "vllm:num_preemptions_total",
    ]) {
      expect(text).toContain(`# TYPE ${name} ${name.endsWith("_total") ? "counter" : "gauge"}`);
      expect(text).toContain(`${name}{`);
    }
    // vLLM V0's gauge is gone: dashboards compute the rate from the two counters.
    expect(text).not.toContain("vllm:prefix_cache_hit_rate");
    expect(text).toMatch(/vllm:cache_config_info\{model_name="[^"]+",block_size="16",.*num_gpu_blocks="\d+"\} 1/);
  });

  test("per-request histograms observe each sequence's phases and token counts", async () => {
    const sumOf = async (name: string) => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      return Number(new RegExp(`^${name}_sum\\{[^}]*\\} (\\S+)$`, "m").exec(text)![1]);
    };
    const countOf = (name: string) => metricValue(server.url, `${name}_count`);
    const before = {
      prompt: await sumOf("vllm:request_prompt_tokens"),
      generation: await sumOf("vllm:request_generation_tokens"),
      tpot: await countOf("vllm:request_time_per_output_token_seconds"),
      queries: await metricValue(server.url, "vllm:prefix_cache_queries_total"),
    };
    const completion = await client.completions.create({
      model,
      prompt: "count these prompt tokens",
      max_tokens: 5,
      n: 2,
      ignore_eos: true,
    } as OpenAI.CompletionCreateParamsNonStreaming);
    const promptTokens = completion.usage!.prompt_tokens;
    expect(await sumOf("vllm:request_prompt_tokens")).toBe(before.prompt + 2 * promptTokens);
    expect(await sumOf("vllm:request_generation_tokens")).toBe(before.generation + 10);
    expect(await countOf("vllm:request_time_per_output_token_seconds")).toBe(before.tpot + 2);
    expect(await metricValue(server.url, "vllm:prefix_cache_queries_total")).toBeGreaterThanOrEqual(
      before.queries + promptTokens,
    );
  });
});
