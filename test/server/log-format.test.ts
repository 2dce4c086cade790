// --log-format json writes one JSON object per log line (time, level, message and the line's
// fields: a request's id, model, tokens, finish reasons, status and time); --log-level warn (or
// VLLM_LOGGING_LEVEL) leaves out the info lines; a level or format it does not know stops serve.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { resolve } from "node:path";
import { type ServerProcess, startServer, writeServerTestModel } from "../helpers/server-process.ts";

const EXECUTABLE = resolve(import.meta.dir, "../../dist/vllm-ts");

let modelDir: string;
let json: ServerProcess;

beforeAll(async () => {
  modelDir = await writeServerTestModel();
  json = await startServer(modelDir, ["--log-format", "json", "--served-model-name", "tiny"]);
});

afterAll(async () => {
  await json?.stop();
});

const complete = (url: string) =>
  fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ prompt: "count to ten", max_tokens: 6, ignore_eos: true }),
  });

test("every line is a JSON object with time, level and message", async () => {
  const lines = json.logs().trimEnd().split("\n");
  expect(lines.length).toBeGreaterThanOrEqual(4);
  for (const line of lines) {
    const record = JSON.parse(line) as Record<string, unknown>;
    expect(new Date(record.time as string).toISOString()).toBe(record.time as string);
    expect(["debug", "info", "warn", "error"]).toContain(record.level as string);
    expect(typeof record.message).toBe("string");
  }
  const weights = JSON.parse(lines.find((line) => line.includes('"step":"weights"'))!);
  expect(weights).toMatchObject({ level: "info", model: "tiny", bytes: expect.any(Number) });
});

test("a request's record carries its id, model, tokens, finish reason, status and time as fields", async () => {
  const response = await complete(json.url);
  const { id, usage } = (await response.json()) as { id: string; usage: { prompt_tokens: number } };
  const record = JSON.parse(await json.waitForLog(new RegExp(`"request_id":"${id}"`)));
  expect(record).toEqual({
    time: expect.any(String),
    level: "info",
    message: expect.stringContaining(`request ${id}: model tiny`),
    request_id: id,
    model: "tiny",
    prompt_tokens: usage.prompt_tokens,
    output_tokens: 6,
    finish_reason: "length",
    status: 200,
    seconds: expect.any(Number),
  });
});

/** A port no one listens on, so that a server whose ready line is not logged can be found. */
function freePort(): number {
  const probe = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const { port } = probe;
  probe.stop(true);
  return port!;
}

test("--log-level warn leaves out the start-up, request and shutdown lines", async () => {
  const port = freePort();
  const child = Bun.spawn(
    [
      EXECUTABLE,
      "serve",
      modelDir,
      "--port",
      String(port),
      "--device",
      "cpu",
      "--kv-cache-memory",
      "16MiB",
      "--log-level",
      "warn",
    ],
    { stdin: "ignore", stdout: "ignore", stderr: "pipe" },
  );
  const url = `http://127.0.0.1:${port}`;
  try {
    while (
      !(await fetch(`${url}/health`).then(
        (r) => r.ok,
        () => false,
      ))
    ) {
      if (child.exitCode !== null) throw new Error(`the server exited: ${await new Response(child.stderr).text()}`);
      await Bun.sleep(50);
    }
    expect((await complete(url)).status).toBe(200);
  } finally {
    child.kill("SIGTERM");
  }
  expect(await child.exited).toBe(0);
  expect(await new Response(child.stderr).text()).toBe("");
});

test("a log level or format serve does not know stops it with a message", () => {
  const serve = (args: string[], env: Record<string, string> = {}) => {
    const result = Bun.spawnSync([EXECUTABLE, "serve", "--port", "0", ...args], {
      stdout: "pipe",
      stderr: "pipe",
      env: { ...Bun.env, ...env },
    });
    return { code: result.exitCode, stderr: result.stderr.toString() };
  };
  const badFlag = serve(["--log-level", "loud"]);
  expect(badFlag.code).toBe(1);
  expect(badFlag.stderr).toContain('--log-level must be one of debug, info, warn, error, got "loud"');
  const badEnv = serve([], { VLLM_LOGGING_LEVEL: "chatty" });
  expect(badEnv.code).toBe(1);
  expect(badEnv.stderr).toContain('VLLM_LOGGING_LEVEL must be one of debug, info, warn, error, got "chatty"');
  const badFormat = serve(["--log-format", "xml"]);
  expect(badFormat.code).toBe(1);
  expect(badFormat.stderr).toContain('--log-format must be one of text, json, got "xml"');
});
