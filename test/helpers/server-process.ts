// Runs the compiled `dist/vllm-ts serve` as a real process on a free port (the server picks it
// with --port 0 and logs its URL), waits until /health answers, and stops it at the end.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { Subprocess } from "bun";
import { TINY_SHAPE, writeRandomModel } from "./random-model.ts";

const EXECUTABLE = resolve(import.meta.dir, "../../dist/vllm-ts");
const START_TIMEOUT_MS = 30_000;
const LOG_WAIT_MS = 10_000;

export interface ServerProcess {
  /** http://127.0.0.1:<port> */
  url: string;
  /** What the server logged so far. */
  logs(): string;
  /** The first line the server logged that matches `pattern`, once it has (at most 10 s). */
  waitForLog(pattern: RegExp): Promise<string>;
  /** Sends the signal and resolves with the exit code. */
  stop(signal?: "SIGTERM" | "SIGINT"): Promise<number>;
}

/** The small Qwen3 model the server tests share; its tokenizer has a Qwen chat template. */
export async function writeServerTestModel(): Promise<string> {
  const model = await writeRandomModel({
    architecture: "Qwen3ForCausalLM",
    ...TINY_SHAPE,
    headDim: 16,
    maxPositionEmbeddings: 512,
  });
  return model.dir;
}

async function collect(stream: ReadableStream<Uint8Array>, sink: { text: string }): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) sink.text += decoder.decode(chunk, { stream: true });
}

/** Which executable serves, on which device (the tests': dist/vllm-ts on the CPU). */
export interface ServerTarget {
  executable: string;
  device: "cpu" | "cuda";
}

/** `modelDir` is the positional MODEL; null leaves the models to `args` (--model, --models-config). */
export async function startServer(
  modelDir: string | null,
  args: string[] = [],
  env: Record<string, string | undefined> = {},
  target: ServerTarget = { executable: EXECUTABLE, device: "cpu" },
): Promise<ServerProcess> {
  if (!existsSync(target.executable)) throw new Error(`${target.executable} is missing: run make first`);
  const child: Subprocess<"ignore", "ignore", "pipe"> = Bun.spawn(
    [
      target.executable,
      "serve",
      ...(modelDir === null ? [] : [modelDir]),
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--device",
      target.device,
      "--kv-cache-memory",
      "16MiB",
      ...args,
    ],
    { stdin: "ignore", stdout: "ignore", stderr: "pipe", env: { ...Bun.env, ...env } },
  );
  const log = { text: "" };
  void collect(child.stderr, log);
  const stop = async (signal: "SIGTERM" | "SIGINT" = "SIGTERM") => {
    child.kill(signal);
    return child.exited;
  };
  const waitForLog = async (pattern: RegExp) => {
    const giveUpAt = Date.now() + LOG_WAIT_MS;
    for (;;) {
      const line = log.text.split("\n").find((l) => pattern.test(l));
      if (line !== undefined) return line;
      if (Date.now() > giveUpAt) throw new Error(`the server logged nothing matching ${pattern}:\n${log.text}`);
      await Bun.sleep(20);
    }
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the server exited with code ${child.exitCode}:\n${log.text}`);
    const url = /serving .* at (http:\/\/[\d.]+:\d+)\/v1/.exec(log.text)?.[1];
    if (
      url &&
      (await fetch(`${url}/health`).then(
        (r) => r.ok,
        () => false,
      ))
    )
      return { url, logs: () => log.text, waitForLog, stop };
    await Bun.sleep(50);
  }
  child.kill("SIGKILL");
  throw new Error(`the server did not become healthy within ${START_TIMEOUT_MS} ms:\n${log.text}`);
}

/** The value of one unlabelled-but-for-model metric in /metrics' Prometheus text (of the given model, or the first). */
export async function metricValue(url: string, name: string, modelName?: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const prefix = modelName === undefined ? `${name}{` : `${name}{model_name="${modelName}"`;
  const line = text.split("\n").find((l) => l.startsWith(prefix));
  if (!line) throw new Error(`/metrics has no ${name}`);
  return Number(line.slice(line.lastIndexOf(" ") + 1));
}
