// Start-up as vLLM's: the port is bound before the model loads, so a port in use or a host this
// machine does not have fails at once, naming host and port, instead of after the load; while the
// model loads, each step is logged with its time, then the model, then where the server answers.
import { expect, test } from "bun:test";
import { resolve } from "node:path";
import { cudaLibraryUnderTest } from "../helpers/cuda-library.ts";
import { startServer, writeServerTestModel } from "../helpers/server-process.ts";

const EXECUTABLE = resolve(import.meta.dir, "../../dist/vllm-ts");

function serve(args: string[]) {
  const result = Bun.spawnSync([EXECUTABLE, "serve", ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: result.exitCode, stderr: result.stderr.toString() };
}

test("a port in use fails before the model loads, naming host and port", async () => {
  const modelDir = await writeServerTestModel();
  const other = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("taken") });
  try {
    const { code, stderr } = serve([modelDir, "--host", "127.0.0.1", "--port", String(other.port)]);
    expect(code).toBe(1);
    expect(stderr).toContain(`cannot listen on 127.0.0.1:${other.port}: the port is in use`);
    expect(stderr).not.toContain("weights:");
  } finally {
    other.stop(true);
  }
});

test("a host this machine does not have is named in the error", () => {
  const { code, stderr } = serve(["--host", "999.1.1.1", "--port", "0"]);
  expect(code).toBe(1);
  expect(stderr).toContain("cannot listen on 999.1.1.1:0: --host is not an address of this machine");
});

test("loading logs the weights, then the KV cache, each with its time, then the model and its device (CPU kernels named) once, then the ready line", async () => {
  const server = await startServer(await writeServerTestModel(), ["--served-model-name", "tiny"]);
  try {
    const lines = server.logs().split("\n");
    const lineOf = (pattern: RegExp) => {
      const index = lines.findIndex((line) => pattern.test(line));
      if (index < 0) throw new Error(`no line matches ${pattern} in:\n${server.logs()}`);
      return index;
    };
    const order = [
      /listening on http:\/\/127\.0\.0\.1:\d+; loading the model$/,
      /tiny: weights: 0\.4 MiB loaded in \d+\.\d\d s$/,
      /tiny: KV cache: 2048 blocks of 16 tokens \(32768 tokens, 16\.0 MiB\) allocated in \d+\.\d\d s$/,
      /tiny: \/\S+ \(Qwen3ForCausalLM\) loaded on cpu \(.+; CPU kernels: [\w-]+\) in \d+\.\d\d s; max model len 512$/,
      /serving tiny at http:\/\/127\.0\.0\.1:\d+\/v1, ready \d+\.\d\d s after start$/,
    ].map(lineOf);
    expect(order).toEqual(order.toSorted((a, b) => a - b));
    expect(server.logs().match(/Qwen3ForCausalLM/g)).toHaveLength(1);
  } finally {
    await server.stop();
  }
});

test("on a backend with graphs, each decode graph's capture is logged at debug level with its time", async () => {
  // Graphs are captured on a decode shape's first use, not at start-up: the CUDA kernels (here, by
  // default, in their CPU emulation) capture one for the first decode step of a single request.
  const server = await startServer(
    await writeServerTestModel(),
    ["--log-level", "debug"],
    { VLLM_TS_LIBRARY: cudaLibraryUnderTest },
    { executable: EXECUTABLE, device: "cuda" },
  );
  try {
    const response = await fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prompt: "hello", max_tokens: 3, ignore_eos: true }),
    });
    expect(response.status).toBe(200);
    expect(await server.waitForLog(/captured a decode graph/)).toMatch(
      /captured a decode graph \(batch 1, block tables 1 wide\) in \d+\.\d{3} s; 1 held$/,
    );
  } finally {
    await server.stop();
  }
});
