// vLLM's logs: one line per request (id, model, tokens, finish reasons, status, time; never the
// prompt's text unless --log-prompts asks for it), a stats line while busy, and neither with
// --disable-log-requests and --disable-log-stats.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import { LOGGED_PROMPT_LENGTH } from "../../src/server/request-log.ts";
import { type ServerProcess, startServer, writeServerTestModel } from "../helpers/server-process.ts";

let logged: ServerProcess;
let quiet: ServerProcess;
let withPrompts: ServerProcess;

beforeAll(async () => {
  const modelDir = await writeServerTestModel();
  const env = { VLLM_LOG_STATS_INTERVAL: "0.2" };
  logged = await startServer(modelDir, ["--served-model-name", "tiny"], env);
  quiet = await startServer(modelDir, ["--disable-log-requests", "--disable-log-stats"], env);
  withPrompts = await startServer(modelDir, ["--served-model-name", "tiny", "--log-prompts"]);
});

afterAll(async () => {
  await logged?.stop();
  await quiet?.stop();
  await withPrompts?.stop();
});

const complete = (server: ServerProcess, body: object) =>
  fetch(`${server.url}/v1/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ prompt: "a secret prompt", max_tokens: 40, ignore_eos: true, n: 2, ...body }),
  });

/** The request's log line, once logged. */
async function requestLine(server: ServerProcess, response: Response): Promise<string> {
  const { id } = (await response.json()) as { id: string };
  return server.waitForLog(new RegExp(`request ${id}:`));
}

const chat = (server: ServerProcess, content: string) =>
  fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ messages: [{ role: "user", content }], max_tokens: 2 }),
  });

test("one line per request with its tokens, finish reasons and status; never the prompt's text", async () => {
  const response = await complete(logged, {});
  const { id, usage } = (await response.json()) as { id: string; usage: { prompt_tokens: number } };
  await Bun.sleep(300);
  const line = logged
    .logs()
    .split("\n")
    .find((l) => l.includes(`request ${id}:`));
  expect(line).toContain(`model tiny, ${usage.prompt_tokens} prompt + 80 output tokens, finished length, status 200`);
  expect(logged.logs()).not.toContain("secret");
  // While it ran, the stats line came at least once.
  expect(logged.logs()).toMatch(
    /tiny: \d+ running, \d+ waiting; prompt [\d.]+ tok\/s, generation [\d.]+ tok\/s; KV cache/,
  );
});

test("a client that leaves is logged with status 499", async () => {
  const controller = new AbortController();
  const response = await fetch(`${logged.url}/v1/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ prompt: "stream", max_tokens: 400, ignore_eos: true, stream: true }),
    signal: controller.signal,
  });
  await response.body!.getReader().read();
  controller.abort();
  await Bun.sleep(300);
  expect(logged.logs()).toMatch(
    /request cmpl-[\w-]+: model tiny, \d+ prompt \+ \d+ output tokens, finished none, status 499/,
  );
});

test("a stats interval that is not a positive number stops the server with a message", () => {
  const result = Bun.spawnSync([resolve(import.meta.dir, "../../dist/vllm-ts"), "serve", "--port", "0"], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...Bun.env, VLLM_LOG_STATS_INTERVAL: "soon" },
  });
  expect(result.exitCode).toBe(1);
  expect(result.stderr.toString()).toContain(
    'VLLM_LOG_STATS_INTERVAL must be a positive number of seconds, got "soon"',
  );
});

test("--disable-log-requests and --disable-log-stats silence both", async () => {
  expect((await complete(quiet, {})).status).toBe(200);
  await Bun.sleep(500);
  expect(quiet.logs()).not.toMatch(/request cmpl-/);
  expect(quiet.logs()).not.toMatch(/running, \d+ waiting/);
});

test("a chat request's line never holds its messages either", async () => {
  await requestLine(logged, await chat(logged, "a secret message"));
  expect(logged.logs()).not.toContain("secret");
});

describe("--log-prompts", () => {
  test("a completion's line ends with its prompt, quoted", async () => {
    const line = await requestLine(withPrompts, await complete(withPrompts, { n: 1, max_tokens: 2 }));
    expect(line).toMatch(/status 200, \d+\.\d{3} s; prompt "a secret prompt"$/);
  });

  test("a chat request's line holds the conversation as the chat template renders it", async () => {
    const line = await requestLine(withPrompts, await chat(withPrompts, 'say "hi"'));
    // The template's system turn, then the user's message, JSON-quoted so that the line stays one.
    expect(line).toContain('; prompt "<|im_start|>system\\n');
    expect(line).toEndWith('<|im_start|>user\\nsay \\"hi\\"<|im_end|>\\n<|im_start|>assistant\\n"');
  });

  test("several prompts are each logged, a long one cut; token ids are logged as ids", async () => {
    const long = "word ".repeat(110);
    const texts = await requestLine(
      withPrompts,
      await complete(withPrompts, { prompt: ["short", long], n: 1, max_tokens: 2 }),
    );
    expect(texts).toEndWith(`; prompts "short", ${JSON.stringify(`${long.slice(0, LOGGED_PROMPT_LENGTH)}…`)}`);
    const ids = await requestLine(withPrompts, await complete(withPrompts, { prompt: [5, 6, 7], n: 1, max_tokens: 2 }));
    expect(ids).toEndWith("; prompt [5,6,7]");
  });
});
