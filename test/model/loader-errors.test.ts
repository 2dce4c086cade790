// Every way a model directory can be broken gives its own error, naming the file and the problem.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, truncate } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModelConfig, parseModelConfig } from "../../src/model/config.ts";
import { ModelLoadError } from "../../src/model/errors.ts";
import { loadGenerationConfig } from "../../src/model/generation-config.ts";
import { openSafetensors } from "../../src/model/safetensors.ts";
import { writeSafetensors } from "../../src/model/safetensors-writer.ts";
import { writeRandomModel } from "../helpers/random-model.ts";

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

async function emptyDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "vllm-ts-broken-"));
  dirs.push(dir);
  return dir;
}

async function randomModelDir(options: Parameters<typeof writeRandomModel>[0] = {}): Promise<string> {
  const { dir } = await writeRandomModel({ numLayers: 1, hiddenSize: 16, numHeads: 2, ...options });
  dirs.push(dir);
  return dir;
}

/** A safetensors file with a hand-written header, to say things a correct writer never would. */
async function writeRawSafetensors(path: string, header: unknown, dataBytes: number): Promise<void> {
  const headerBytes = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  await Bun.write(path, new Blob([prefix, headerBytes, new Uint8Array(dataBytes)]));
}

/** The ModelLoadError `run` throws, for assertions on its file and message. */
async function loadError(run: () => unknown): Promise<ModelLoadError> {
  try {
    await run();
  } catch (error) {
    expect(error).toBeInstanceOf(ModelLoadError);
    return error as ModelLoadError;
  }
  throw new Error("expected a ModelLoadError, but loading succeeded");
}

describe("safetensors errors", () => {
  test("a file shorter than the 8-byte length prefix", async () => {
    const dir = await emptyDir();
    await Bun.write(join(dir, "model.safetensors"), new Uint8Array(5));
    const error = await loadError(() => openSafetensors(dir));
    expect(error.file).toBe(join(dir, "model.safetensors"));
    expect(error.message).toBe(`${join(dir, "model.safetensors")}: only 5 bytes, too short for a safetensors header`);
  });

  test("a file truncated inside its header", async () => {
    const dir = await randomModelDir();
    const file = join(dir, "model.safetensors");
    await truncate(file, 40);
    const error = await loadError(() => openSafetensors(dir));
    expect(error.file).toBe(file);
    expect(error.message).toMatch(/header length \d+ runs past the end of the 40-byte file \(truncated\?\)/);
  });

  test("a file truncated inside its tensor data", async () => {
    const dir = await randomModelDir();
    const file = join(dir, "model.safetensors");
    await truncate(file, Bun.file(file).size - 4);
    const error = await loadError(() => openSafetensors(dir));
    expect(error.file).toBe(file);
    expect(error.message).toContain("lm_head.weight");
    expect(error.message).toMatch(/data_offsets \[\d+, \d+\] out of range of the \d+ data bytes \(truncated file\?\)/);
  });

  test("a header lying about sizes", async () => {
    const dir = await emptyDir();
    const file = join(dir, "model.safetensors");
    await writeRawSafetensors(file, { w: { dtype: "F32", shape: [2, 3], data_offsets: [0, 16] } }, 24);
    const error = await loadError(() => openSafetensors(dir));
    expect(error.message).toBe(
      `${file}: tensor "w": header lying about sizes: shape [2, 3] of F32 needs 24 bytes, data_offsets span 16`,
    );
  });

  test("a header that is not JSON", async () => {
    const dir = await emptyDir();
    const file = join(dir, "model.safetensors");
    await writeRawSafetensors(file, '{"w": {"dtype": "F32",', 0);
    const error = await loadError(() => openSafetensors(dir));
    expect(error.file).toBe(file);
    expect(error.problem).toStartWith("invalid safetensors header JSON");
  });

  test("a dtype the engine cannot compute with names the tensor when it is requested", async () => {
    const dir = await emptyDir();
    const file = join(dir, "model.safetensors");
    await writeRawSafetensors(file, { scales: { dtype: "I8", shape: [4], data_offsets: [0, 4] } }, 4);
    const store = openSafetensors(dir);
    expect(store.has("scales")).toBe(true);
    const error = await loadError(() => store.tensor("scales"));
    expect(error.message).toBe(`${file}: tensor "scales" has unsupported dtype I8 (supported: F32, F16, BF16)`);
  });

  test("a dtype the format does not define fails at open", async () => {
    const dir = await emptyDir();
    await writeRawSafetensors(
      join(dir, "model.safetensors"),
      { w: { dtype: "F128", shape: [1], data_offsets: [0, 16] } },
      16,
    );
    expect((await loadError(() => openSafetensors(dir))).problem).toBe('tensor "w": unknown dtype "F128"');
  });

  test("a requested tensor that is not there names the tensor and the model directory", async () => {
    const dir = await randomModelDir();
    const error = await loadError(() => openSafetensors(dir).tensor("model.layers.9.mlp.up_proj.weight"));
    expect(error.message).toBe(`${dir}: tensor "model.layers.9.mlp.up_proj.weight" not found in the model's weights`);
  });

  test("an index pointing at a shard file that is missing", async () => {
    const dir = await randomModelDir({ sharded: true });
    await rm(join(dir, "model-00002-of-00002.safetensors"));
    const error = await loadError(() => openSafetensors(dir));
    expect(error.file).toBe(join(dir, "model.safetensors.index.json"));
    expect(error.problem).toMatch(/^tensor ".+" is in model-00002-of-00002.safetensors, which is missing$/);
  });

  test("an index placing a tensor in a shard that lacks it", async () => {
    const dir = await emptyDir();
    await writeSafetensors(join(dir, "a.safetensors"), { w: { dtype: "f32", shape: [1], data: new Float32Array(1) } });
    await Bun.write(
      join(dir, "model.safetensors.index.json"),
      JSON.stringify({ weight_map: { w: "a.safetensors", v: "a.safetensors" } }),
    );
    const error = await loadError(() => openSafetensors(dir));
    expect(error.file).toBe(join(dir, "a.safetensors"));
    expect(error.problem).toContain('tensor "v"');
  });

  test("a directory with no weights at all", async () => {
    const dir = await emptyDir();
    const error = await loadError(() => openSafetensors(dir));
    expect(error.message).toBe(`${dir}: no model.safetensors or model.safetensors.index.json found`);
  });
});

describe("config errors", () => {
  test("a missing config.json", async () => {
    const dir = await emptyDir();
    const error = await loadError(() => loadModelConfig(dir));
    expect(error.message).toBe(`${join(dir, "config.json")}: file not found`);
  });

  test("a corrupt config.json", async () => {
    const dir = await randomModelDir();
    await Bun.write(join(dir, "config.json"), '{"architectures": ["LlamaForCausalLM"], "hidden_size": ');
    const error = await loadError(() => loadModelConfig(dir));
    expect(error.file).toBe(join(dir, "config.json"));
    expect(error.problem).toStartWith("invalid JSON");
  });

  test("an unknown architecture lists the supported ones", async () => {
    const error = await loadError(() => parseModelConfig({ architectures: ["GPT2LMHeadModel"] }, "gpt2/config.json"));
    expect(error.message).toBe(
      "gpt2/config.json: unsupported architecture GPT2LMHeadModel (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, Phi3ForCausalLM, Qwen2MoeForCausalLM, Qwen3MoeForCausalLM, MixtralForCausalLM)",
    );
  });

  const BASE = {
    architectures: ["LlamaForCausalLM"],
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    vocab_size: 100,
  };

  test("fields are named when missing or invalid", async () => {
    const { vocab_size: _, ...withoutVocab } = BASE;
    expect((await loadError(() => parseModelConfig(withoutVocab, "c.json"))).problem).toBe(
      'missing required field "vocab_size"',
    );
    expect((await loadError(() => parseModelConfig({ ...BASE, hidden_size: -64 }, "c.json"))).problem).toBe(
      '"hidden_size" must be a positive integer, got -64',
    );
    expect((await loadError(() => parseModelConfig({ ...BASE, tie_word_embeddings: "yes" }, "c.json"))).problem).toBe(
      '"tie_word_embeddings" must be true or false, got "yes"',
    );
    expect((await loadError(() => parseModelConfig({ ...BASE, torch_dtype: "float8" }, "c.json"))).problem).toStartWith(
      'unsupported torch_dtype "float8"',
    );
  });

  test("heads that do not divide", async () => {
    expect((await loadError(() => parseModelConfig({ ...BASE, num_key_value_heads: 3 }, "c.json"))).problem).toBe(
      '"num_attention_heads" (4) must be a multiple of "num_key_value_heads" (3)',
    );
    expect((await loadError(() => parseModelConfig({ ...BASE, hidden_size: 66 }, "c.json"))).problem).toBe(
      '"hidden_size" (66) must be divisible by "num_attention_heads" (4) when "head_dim" is absent',
    );
    expect(parseModelConfig({ ...BASE, hidden_size: 66, head_dim: 16 }, "c.json").headDim).toBe(16);
  });

  test("rope scaling the engine does not implement", async () => {
    const error = await loadError(() =>
      parseModelConfig({ ...BASE, rope_scaling: { type: "yarn", factor: 4 } }, "c.json"),
    );
    expect(error.problem).toBe('unsupported rope_scaling type "yarn" (supported: llama3, linear, default)');
    const incomplete = { ...BASE, rope_scaling: { rope_type: "llama3", factor: 8 } };
    expect((await loadError(() => parseModelConfig(incomplete, "c.json"))).problem).toBe(
      'missing required field "rope_scaling.low_freq_factor"',
    );
  });

  test("a Qwen sliding window on only some layers", async () => {
    const qwen = {
      ...BASE,
      architectures: ["Qwen2ForCausalLM"],
      use_sliding_window: true,
      sliding_window: 32,
      max_window_layers: 1,
    };
    expect((await loadError(() => parseModelConfig(qwen, "c.json"))).problem).toBe(
      'sliding window on only some layers ("max_window_layers" 1 of 2) is not supported',
    );
  });
});

describe("generation_config errors", () => {
  test("a corrupt generation_config.json", async () => {
    const dir = await randomModelDir();
    await Bun.write(join(dir, "generation_config.json"), "{ temperature: 0.7 }");
    const error = await loadError(() => loadGenerationConfig(dir));
    expect(error.file).toBe(join(dir, "generation_config.json"));
    expect(error.problem).toStartWith("invalid JSON");
  });

  test("a sampling default of the wrong type", async () => {
    const dir = await randomModelDir();
    await Bun.write(join(dir, "generation_config.json"), JSON.stringify({ top_p: "0.9" }));
    expect((await loadError(() => loadGenerationConfig(dir))).problem).toBe('"top_p" must be a number, got "0.9"');
  });
});
