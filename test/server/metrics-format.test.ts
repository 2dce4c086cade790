// /metrics as Prometheus reads it: parsed by a Prometheus text-format parser (not by this project's
// own patterns), every vLLM V1 metric a dashboard queries is there under its name and type, each
// series labelled with its model, and the figures add up to the requests that were served.
import { afterAll, beforeAll, expect, test } from "bun:test";
import parsePrometheusTextFormat, { type PrometheusFamily } from "parse-prometheus-text-format";
import { bucketBound } from "../../src/server/metrics.ts";
import { type ServerProcess, startServer, writeServerTestModel } from "../helpers/server-process.ts";

const MODEL = "tiny";
/** One full KV block (16 tokens) and a partial one: the repeat finds the full one cached. */
const PROMPT = Array.from({ length: 20 }, (_, i) => 5 + i);
const MAX_TOKENS = 3;
const NUM_REQUESTS = 3;

let server: ServerProcess;
let families: Map<string, PrometheusFamily>;

beforeAll(async () => {
  server = await startServer(await writeServerTestModel(), ["--served-model-name", MODEL]);
  // One after another, so that each finds the previous one's blocks cached.
  for (let i = 0; i < NUM_REQUESTS; i++) {
    const response = await fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: MODEL, prompt: PROMPT, max_tokens: MAX_TOKENS, ignore_eos: true }),
    });
    expect(response.status).toBe(200);
  }
  const parsed = parsePrometheusTextFormat(await (await fetch(`${server.url}/metrics`)).text());
  families = new Map(parsed.map((family) => [family.name, family]));
});

afterAll(async () => {
  await server?.stop();
});

function family(name: string, type: PrometheusFamily["type"]): PrometheusFamily {
  const found = families.get(name);
  if (!found) throw new Error(`/metrics has no ${name}; it has ${[...families.keys()].join(", ")}`);
  expect(found.type).toBe(type);
  return found;
}

/** The one series of a counter or gauge (its labels checked), as a number. */
function value(name: string, type: "COUNTER" | "GAUGE", labels: Record<string, string> = {}): number {
  const { metrics } = family(name, type);
  expect(metrics).toHaveLength(1);
  expect(metrics[0]!.labels).toEqual({ model_name: MODEL, ...labels });
  return Number(metrics[0]!.value);
}

/**
 * A histogram's cumulative bucket counts by bound. The parser folds a histogram's series into one
 * set of buckets (it keeps neither their labels nor _sum and _count), so histograms are checked by
 * their buckets; with one model served, that set is its own.
 */
function buckets(name: string): Map<string, number> {
  const { metrics } = family(name, "HISTOGRAM");
  expect(metrics).toHaveLength(1);
  return new Map(Object.entries(metrics[0]!.buckets!).map(([bound, count]) => [bound, Number(count)]));
}

test("every family has a TYPE line of its own name: none is read as untyped", () => {
  const untyped = [...families.values()].filter((f) => f.type === "UNTYPED").map((f) => f.name);
  expect(untyped).toEqual([]);
  for (const f of families.values()) expect(f.help).not.toBe("");
});

test("the token counters count the requests' prompt and generated tokens", () => {
  expect(value("vllm:prompt_tokens_total", "COUNTER")).toBe(NUM_REQUESTS * PROMPT.length);
  expect(value("vllm:generation_tokens_total", "COUNTER")).toBe(NUM_REQUESTS * MAX_TOKENS);
  expect(value("vllm:request_success_total", "COUNTER", { finished_reason: "length" })).toBe(NUM_REQUESTS);
  expect(value("vllm:num_preemptions_total", "COUNTER")).toBe(0);
});

test("the prefix-cache counters count queried tokens and the full block each repeat found cached", () => {
  expect(value("vllm:prefix_cache_queries_total", "COUNTER")).toBe(NUM_REQUESTS * PROMPT.length);
  expect(value("vllm:prefix_cache_hits_total", "COUNTER")).toBe((NUM_REQUESTS - 1) * 16);
});

test("the per-request histograms observe each request once, in vLLM's buckets", () => {
  for (const name of [
    "vllm:request_queue_time_seconds",
    "vllm:request_prefill_time_seconds",
    "vllm:request_decode_time_seconds",
    "vllm:request_inference_time_seconds",
    "vllm:request_time_per_output_token_seconds",
    "vllm:e2e_request_latency_seconds",
    "vllm:time_to_first_token_seconds",
  ])
    expect(buckets(name).get("+Inf")).toBe(NUM_REQUESTS);
  // 20 prompt tokens: above the bound 10.0, within 20.0; 3 generated: above 2.0, within 5.0.
  const prompt = buckets("vllm:request_prompt_tokens");
  expect([prompt.get("10.0"), prompt.get("20.0"), prompt.get("+Inf")]).toEqual([0, NUM_REQUESTS, NUM_REQUESTS]);
  const generation = buckets("vllm:request_generation_tokens");
  expect([generation.get("2.0"), generation.get("5.0")]).toEqual([0, NUM_REQUESTS]);
});

test("the iteration histogram observes every step: one prefill and the decode steps of each request", () => {
  const iterations = buckets("vllm:iteration_tokens_total");
  // Each request: a prefill step (20 tokens, or the 4 not cached), then MAX_TOKENS - 1 decode steps of 1.
  expect(iterations.get("+Inf")).toBe(NUM_REQUESTS * MAX_TOKENS);
  expect(iterations.get("1.0")).toBe(NUM_REQUESTS * (MAX_TOKENS - 1));
});

test("cache_config_info is a gauge of 1 whose labels give the KV cache's configuration", () => {
  const { metrics } = family("vllm:cache_config_info", "GAUGE");
  expect(metrics).toHaveLength(1);
  expect(metrics[0]!.value).toBe("1");
  expect(metrics[0]!.labels).toMatchObject({
    model_name: MODEL,
    block_size: "16",
    cache_dtype: "auto",
    enable_prefix_caching: "True",
    num_gpu_blocks: "2048",
  });
});

test("bucket bounds are spelled as vLLM's Python client spells them, so that their le labels match", () => {
  expect([0.001, 0.25, 1, 2560, 131072, 1_000_000, 1_234_567].map(bucketBound)).toEqual([
    "0.001",
    "0.25",
    "1.0",
    "2560.0",
    "131072.0",
    "1e+06",
    "1.234567e+06",
  ]);
});
