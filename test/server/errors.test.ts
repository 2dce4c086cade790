// Every way a request can be wrong gets OpenAI's error shape with the right status and a message
// naming what to fix, and the server keeps serving afterwards.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ServerProcess, startServer, writeServerTestModel } from "../helpers/server-process.ts";

let server: ServerProcess;

beforeAll(async () => {
  server = await startServer(await writeServerTestModel(), [
    "--served-model-name",
    "tiny",
    "--max-request-body",
    "1MiB",
  ]);
});

afterAll(async () => {
  await server?.stop();
});

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: number };
}

async function post(path: string, body: unknown, init: RequestInit = {}): Promise<{ status: number; body: ErrorBody }> {
  const response = await fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...init,
  });
  return { status: response.status, body: (await response.json()) as ErrorBody };
}

function expectError(result: { status: number; body: ErrorBody }, status: number, message: RegExp, param?: string) {
  expect(result.status).toBe(status);
  expect(result.body.error).toEqual({
    message: expect.stringMatching(message),
    type: expect.any(String),
    param: param ?? null,
    code: status,
  });
}

describe("request errors", () => {
  test("malformed JSON is a 400 that says so", async () => {
    expectError(await post("/v1/completions", "{ not json"), 400, /not valid JSON/);
  });

  test("a schema violation is a 400 naming the field", async () => {
    expectError(await post("/v1/completions", { prompt: "hi", max_tokens: "ten" }), 400, /^max_tokens: /, "max_tokens");
    expectError(
      await post("/v1/chat/completions", { messages: [{ role: "wizard", content: "hi" }] }),
      400,
      /^messages\.0\.role: /,
      "messages.0.role",
    );
    expectError(await post("/v1/completions", {}), 400, /^prompt: /, "prompt");
  });

  test("a sampling parameter out of range is a 400 naming the field as the client wrote it", async () => {
    expectError(
      await post("/v1/completions", { prompt: "hi", top_p: 1.5 }),
      400,
      /^top_p must be in \(0, 1\]/,
      "top_p",
    );
    expectError(
      await post("/v1/chat/completions", { messages: [{ role: "user", content: "hi" }], logit_bias: { "99999": 5 } }),
      400,
      /outside the vocabulary/,
      "logit_bias",
    );
    expectError(await post("/v1/completions", { prompt: "hi", n: 0 }), 400, /^n must be >= 1/, "n");
  });

  test("values the device's 32-bit types cannot hold: top_k keeps every token, temperature is a 400", async () => {
    for (const top_k of [2 ** 31, 2 ** 32 + 5]) {
      expect((await post("/v1/completions", { prompt: "hi", max_tokens: 2, top_k })).status).toBe(200);
    }
    expectError(
      await post("/v1/completions", { prompt: "hi", temperature: 1e39 }),
      400,
      /^temperature must be at most 3\.4028234663852886e\+38/,
      "temperature",
    );
  });

  test('a logit_bias key "__proto__" is refused as a key that is not a token id, not dropped', async () => {
    expectError(
      await post(
        "/v1/chat/completions",
        '{"messages": [{"role": "user", "content": "hi"}], "logit_bias": {"__proto__": 5}}',
      ),
      400,
      /^logit_bias keys must be token ids, got "__proto__"/,
      "logit_bias",
    );
  });

  test("a prompt as long as the context, or one that max_tokens would overflow, is a 400", async () => {
    expectError(
      await post("/v1/completions", { prompt: "a ".repeat(600) }),
      400,
      /maximum context length is 512 tokens.*\d+ input tokens/,
      "prompt",
    );
    expectError(
      await post("/v1/completions", { prompt: "hello", max_tokens: 600 }),
      400,
      /maximum context length is 512 tokens.*600 in the completion/,
      "max_tokens",
    );
    expectError(
      await post("/v1/chat/completions", { messages: [{ role: "user", content: "a ".repeat(600) }] }),
      400,
      /maximum context length/,
      "messages",
    );
  });

  test("an unknown model is a 404 naming the served one; a missing model means the served one", async () => {
    expectError(
      await post("/v1/completions", { model: "gpt-4", prompt: "hi" }),
      404,
      /`gpt-4` does not exist.*`tiny`/,
      "model",
    );
    expect((await post("/v1/completions", { prompt: "hi", max_tokens: 2 })).status).toBe(200);
  });

  test("suffix, and echo with logprobs, are refused clearly", async () => {
    expectError(
      await post("/v1/completions", { prompt: "hi", suffix: "end" }),
      400,
      /suffix is not supported/,
      "suffix",
    );
    expectError(
      await post("/v1/completions", { prompt: "hi", echo: true, logprobs: 1 }),
      400,
      /prompt's logprobs/,
      "echo",
    );
  });

  test("token ids outside the vocabulary are a 400, never a crash", async () => {
    expectError(
      await post("/v1/completions", { prompt: [1, 2, 1_000_000] }),
      400,
      /token id 1000000 is outside the vocabulary/,
      "prompt",
    );
  });

  test("an unknown route is a 404 and a wrong method a 405, in the same shape", async () => {
    const notFound = await fetch(`${server.url}/v1/embeddings`, { method: "POST", body: "{}" });
    expect(notFound.status).toBe(404);
    expect(((await notFound.json()) as ErrorBody).error.message).toContain("/v1/embeddings");
    const wrongMethod = await fetch(`${server.url}/v1/completions`);
    expect(wrongMethod.status).toBe(405);
  });

  test("a model name of a megabyte is quoted in the 404 cut to 100 characters", async () => {
    const result = await post("/v1/completions", { model: "m".repeat(2 ** 20 - 100), prompt: "hi" });
    expectError(result, 404, new RegExp(`^The model \`${"m".repeat(100)}…\` does not exist`), "model");
    expect(result.body.error.message.length).toBeLessThan(200);
  });

  test("JSON sent as anything but application/json (charset utf-8 allowed) is a 415 on /v1", async () => {
    const body = JSON.stringify({ prompt: "hi", max_tokens: 2 });
    const status = async (contentType: string | null) =>
      (
        await fetch(`${server.url}/v1/completions`, {
          method: "POST",
          headers: contentType === null ? {} : { "Content-Type": contentType },
          body: contentType === null ? new Blob([body]) : body,
        })
      ).status;
    expect(await status("text/plain")).toBe(415);
    expect(await status("application/x-www-form-urlencoded")).toBe(415);
    expect(await status("application/json; charset=latin1")).toBe(415);
    expect(await status(null)).toBe(415);
    expect(await status("application/json; charset=utf-8")).toBe(200);
    expect(await status("Application/JSON")).toBe(200);
    expectError(await post("/v1/completions", body, { headers: { "Content-Type": "text/plain" } }), 415, /text\/plain/);
  });

  test("a Host the server does not answer to (DNS rebinding) is a 421; loopback names are served", async () => {
    const withHost = (host: string) => fetch(`${server.url}/v1/models`, { headers: { Host: host } });
    const foreign = await withHost("attacker.example:8000");
    expect(foreign.status).toBe(421);
    expect(((await foreign.json()) as ErrorBody).error).toMatchObject({
      message: expect.stringContaining("attacker.example:8000"),
      code: 421,
    });
    for (const host of ["localhost:8000", "127.0.0.1", "[::1]:9"]) expect((await withHost(host)).status).toBe(200);
  });

  test("HEAD answers every GET route as GET would, without a body", async () => {
    for (const path of ["/health", "/v1/models", "/metrics", "/version"]) {
      const response = await fetch(`${server.url}${path}`, { method: "HEAD" });
      expect(response.status).toBe(200);
      expect(await response.text()).toBe("");
    }
  });

  test("a body over the size limit is a 413", async () => {
    const result = await post("/v1/completions", { prompt: "x".repeat(2 * 2 ** 20) });
    expectError(result, 413, /larger than the limit of 1048576 bytes/);
  });

  test("the server still serves after all of the above", async () => {
    const response = await post("/v1/chat/completions", { messages: [{ role: "user", content: "hi" }], max_tokens: 3 });
    expect(response.status).toBe(200);
  });
});
