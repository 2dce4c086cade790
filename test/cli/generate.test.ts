// The compiled executable on its own: copied alone into an empty folder it still runs (the native
// library travels inside it), generates from the embedded demo model and from a model directory,
// and reports a bad model directory clearly.

import { dlopen } from "bun:ffi";
import { beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadTokenizer } from "../../src/model/tokenizer.ts";
import { referenceForward } from "../../src/reference/forward.ts";
import { writeGgufModel } from "../helpers/gguf-model-writer.ts";
import { TINY_SHAPE, writeRandomModel } from "../helpers/random-model.ts";

const built = resolve(import.meta.dir, "../../dist/vllm-ts");
let executable: string;

beforeAll(() => {
  if (!existsSync(built)) throw new Error(`${built} is missing: run make first`);
  const folder = mkdtempSync(join(tmpdir(), "vllm-ts-exe-"));
  executable = join(folder, "vllm-ts");
  copyFileSync(built, executable);
});

function run(args: string[]) {
  // A fresh cache dir proves the embedded library is extracted, not found on the build tree.
  const cache = mkdtempSync(join(tmpdir(), "vllm-ts-cache-"));
  const result = Bun.spawnSync([executable, ...args], {
    cwd: tmpdir(),
    env: { ...process.env, XDG_CACHE_HOME: cache },
  });
  return { code: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

/** Whether this machine has an NVIDIA driver for the CUDA library to load. */
function hasNvidiaDriver(): boolean {
  try {
    dlopen("libcuda.so.1", {}).close();
    return true;
  } catch {
    return false;
  }
}

describe("dist/vllm-ts generate", () => {
  // Only where nvcc built the CUDA library into the executable and no driver is installed.
  test.skipIf(!existsSync(resolve(import.meta.dir, "../../build/libvllm_ts_cuda.so")) || hasNvidiaDriver())(
    "--device auto without an NVIDIA driver runs on the CPU and says the driver is missing",
    () => {
      const result = run(["generate", "--prompt", "Hi", "--max-tokens", "1"]);
      expect(result.code).toBe(0);
      expect(result.stderr).toMatch(/device: cpu .*not used: cuda: .*no NVIDIA driver found/);
    },
  );

  test("runs the embedded demo model from a lone copy, greedy output is reproducible", () => {
    const first = run(["generate", "--prompt", "The capital of France is", "--max-tokens", "12", "--device", "cpu"]);
    expect(first.stderr).toContain("vllm-ts-demo");
    expect(first.code).toBe(0);
    expect(first.stdout.trim().length).toBeGreaterThan(0);
    const second = run(["generate", "--prompt", "The capital of France is", "--max-tokens", "12", "--device", "cpu"]);
    expect(second.stdout).toBe(first.stdout);
  });

  test("greedy continuation of a model directory equals the reference forward's", async () => {
    const model = await writeRandomModel({
      architecture: "LlamaForCausalLM",
      ...TINY_SHAPE,
      seed: 3,
    });
    const tokenizer = await loadTokenizer(model.dir);
    const prompt = "hello world";
    const ids = tokenizer.encode(prompt);
    const promptLength = ids.length;
    const eos = new Set(model.config.eosTokenIds);
    for (let step = 0; step < 6; step++) {
      const logits = referenceForward(model.config, model.weights, ids);
      const last = logits.subarray((ids.length - 1) * model.config.vocabSize, ids.length * model.config.vocabSize);
      const next = last.indexOf(Math.max(...last));
      if (eos.has(next)) break;
      ids.push(next);
    }
    const expected = tokenizer.decode(ids.slice(promptLength), { skipSpecialTokens: true });
    const result = run(["generate", model.dir, "--prompt", prompt, "--max-tokens", "6", "--device", "cpu"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${expected}\n`);
  });

  test("a .gguf file generates what its safetensors folder generates", async () => {
    const model = await writeRandomModel({ architecture: "LlamaForCausalLM", hiddenSize: 64, numHeads: 4, seed: 4 });
    const file = await writeGgufModel(model, { type: "F32" });
    const args = ["--prompt", "hello world", "--max-tokens", "6", "--device", "cpu"];
    const fromFolder = run(["generate", model.dir, ...args]);
    const fromGguf = run(["generate", file, ...args]);
    expect(fromGguf.code).toBe(0);
    expect(fromGguf.stderr).toContain("model model (LlamaForCausalLM");
    expect(fromGguf.stdout).toBe(fromFolder.stdout);
  });

  test("a folder without config.json fails with a message naming the file", () => {
    const empty = mkdtempSync(join(tmpdir(), "vllm-ts-empty-"));
    const result = run(["generate", empty, "--prompt", "hi"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(join(empty, "config.json"));
  });

  test("an unknown architecture is named in the error", async () => {
    const model = await writeRandomModel({
      architecture: "LlamaForCausalLM",
      dtype: "float32",
      hiddenSize: 64,
      intermediateSize: 96,
      numLayers: 1,
      numHeads: 4,
      numKvHeads: 2,
    });
    const config = JSON.parse(await Bun.file(join(model.dir, "config.json")).text());
    writeFileSync(join(model.dir, "config.json"), JSON.stringify({ ...config, architectures: ["GPT2LMHeadModel"] }));
    const result = run(["generate", model.dir, "--prompt", "hi"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("GPT2LMHeadModel");
  });

  test("a bad option value is rejected clearly", () => {
    const result = run(["generate", "--prompt", "hi", "--max-tokens", "zero"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("--max-tokens");
  });
});
