// The engine survives a failing step: a fault injected into one model step (VLLM_TS_INJECT_STEP_FAULT)
// fails the requests of that step with a 500 in OpenAI's shape, frees their KV blocks, and the
// next request is served as if nothing had happened; also with async scheduling, where the failing
// step is launched while the one before it is still being reported.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { metricValue, type ServerProcess, startServer, writeServerTestModel } from "../helpers/server-process.ts";

describe.each([[[]], [["--async-scheduling"]]])("with flags %j", (flags: string[]) => {
  let server: ServerProcess;

  beforeAll(async () => {
    // Step 1 prefills the first request, step 2 decodes, step 3 fails.
    server = await startServer(await writeServerTestModel(), flags, { VLLM_TS_INJECT_STEP_FAULT: "3" });
  });

  afterAll(async () => {
    await server?.stop();
  });

  const complete = (body: object) =>
    fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prompt: "hello there", max_tokens: 6, ignore_eos: true, ...body }),
    });

  test("a step that throws fails its requests with a 500; the engine goes on", async () => {
    const failed = await complete({});
    expect(failed.status).toBe(500);
    const { error } = (await failed.json()) as { error: { message: string; type: string; code: number } };
    expect(error.message).toContain("the engine failed while running this request: a fault injected for testing");
    expect(error.code).toBe(500);

    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);
    expect(await metricValue(server.url, "vllm:num_requests_running")).toBe(0);
    expect(await metricValue(server.url, "vllm:kv_cache_usage_perc")).toBe(0);

    const served = await complete({});
    expect(served.status).toBe(200);
    const body = (await served.json()) as {
      choices: { finish_reason: string }[];
      usage: { completion_tokens: number };
    };
    expect(body.choices[0]!.finish_reason).toBe("length");
    expect(body.usage.completion_tokens).toBe(6);
    expect(server.logs()).toContain("a step of 1 request(s) failed");
  });
});
