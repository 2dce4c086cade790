// Admission counts sequences, not HTTP requests: n is capped by --max-n, the pending bound counts
// n per prompt, and a client that leaves a request of 10,000 samples frees all of them at once.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { metricValue, type ServerProcess, startServer, writeServerTestModel } from "../helpers/server-process.ts";

let modelDir: string;
let small: ServerProcess;

beforeAll(async () => {
  modelDir = await writeServerTestModel();
  small = await startServer(modelDir, ["--max-pending-requests", "4"]);
});

afterAll(async () => {
  await small?.stop();
});

const post = (server: ServerProcess, body: object, signal?: AbortSignal) =>
  fetch(`${server.url}/v1/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });

async function errorOf(response: Response): Promise<{ message: string; param: string | null }> {
  return ((await response.json()) as { error: { message: string; param: string | null } }).error;
}

/** Starts a long stream and waits for its first token, so that its sequences are admitted. */
async function longStream(server: ServerProcess, n: number) {
  const controller = new AbortController();
  const response = await post(
    server,
    { prompt: "keep going", n, max_tokens: 400, ignore_eos: true, stream: true },
    controller.signal,
  );
  expect(response.status).toBe(200);
  const reader = response.body!.getReader();
  await reader.read();
  return { leave: () => controller.abort() };
}

async function waitUntilIdle(server: ServerProcess, timeoutMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    const [running, waiting, kvUsage] = await Promise.all([
      metricValue(server.url, "vllm:num_requests_running"),
      metricValue(server.url, "vllm:num_requests_waiting"),
      metricValue(server.url, "vllm:kv_cache_usage_perc"),
    ]);
    const elapsed = performance.now() - started;
    if (running === 0 && waiting === 0 && kvUsage === 0) return elapsed;
    if (elapsed > timeoutMs) throw new Error(`still ${running} running, ${waiting} waiting, KV ${kvUsage}`);
    await Bun.sleep(10);
  }
}

describe("--max-n", () => {
  test("a huge n is a 400 naming the limit within a second, and /health answers meanwhile", async () => {
    const started = performance.now();
    const [response, health] = await Promise.all([
      post(small, { prompt: "hi", n: 1_000_000, max_tokens: 2 }),
      fetch(`${small.url}/health`),
    ]);
    expect(response.status).toBe(400);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(health.status).toBe(200);
    const error = await errorOf(response);
    expect(error.param).toBe("n");
    expect(error.message).toContain("--max-n");
  });

  test("defaults to the pending bound when that is lower than 128: n = 50 is refused at 4", async () => {
    const response = await post(small, { prompt: "hi", n: 50, max_tokens: 2 });
    expect(response.status).toBe(400);
    expect((await errorOf(response)).message).toMatch(/^n must be at most 4 /);
  });

  test("may not exceed --max-pending-requests: the server refuses to start", async () => {
    await expect(startServer(modelDir, ["--max-pending-requests", "4", "--max-n", "10"])).rejects.toThrow(
      "--max-n 10 is more than --max-pending-requests 4",
    );
  });
});

describe("--max-pending-requests counts sequences", () => {
  test("with 3 of 4 sequences taken, n = 2 is a 503 and n = 1 is served", async () => {
    const stream = await longStream(small, 3);
    const refused = await post(small, { prompt: "hi", n: 2, max_tokens: 2 });
    expect(refused.status).toBe(503);
    expect((await errorOf(refused)).message).toContain("at capacity (4 pending sequences)");
    expect((await post(small, { prompt: "hi", n: 1, max_tokens: 2 })).status).toBe(200);
    stream.leave();
    await waitUntilIdle(small, 5000);
    expect((await post(small, { prompt: "hi", n: 4, max_tokens: 2 })).status).toBe(200);
  });

  test("several prompts count n each: 3 prompts × n = 2 can never fit 4 and are a 400", async () => {
    const response = await post(small, { prompt: ["a", "b", "c"], n: 2, max_tokens: 2 });
    expect(response.status).toBe(400);
    expect((await errorOf(response)).message).toContain("6 sequences");
  });
});

describe("a client leaving a request of 10,000 samples", () => {
  test("frees every sequence and KV block within a second", async () => {
    const server = await startServer(modelDir, ["--max-n", "10000", "--max-pending-requests", "10000"]);
    try {
      const stream = await longStream(server, 10_000);
      expect(await metricValue(server.url, "vllm:num_requests_waiting")).toBeGreaterThan(0);
      stream.leave();
      expect(await waitUntilIdle(server, 1000)).toBeLessThan(1000);
      expect((await post(server, { prompt: "hi", max_tokens: 2 })).status).toBe(200);
    } finally {
      await server.stop();
    }
  });
});
