// Model loading as a specification: config.json of each architecture, safetensors round trips
// (single file and sharded, f32/f16/bf16), generation_config defaults and the tiny tokenizer.

import { afterAll, describe, expect, test } from "bun:test";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import {
  bf16BitsToF32,
  decodeToF32,
  dtypeOfTorchName,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  type TorchDtypeName,
} from "../../src/backend/dtype.ts";
import { type ModelConfig, parseModelConfig, perTokenKvBytes } from "../../src/model/config.ts";
import { loadGenerationConfig, parseGenerationConfig } from "../../src/model/generation-config.ts";
import { openSafetensors } from "../../src/model/safetensors.ts";
import { type RandomModel, type RandomModelOptions, writeRandomModel } from "../helpers/random-model.ts";
import { tinyTokenizerFiles } from "../helpers/tiny-tokenizer.ts";

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

async function randomModel(options: RandomModelOptions): Promise<RandomModel> {
  const model = await writeRandomModel(options);
  dirs.push(model.dir);
  return model;
}

const LLAMA_31_8B = {
  architectures: ["LlamaForCausalLM"],
  attention_bias: false,
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
  head_dim: 128,
  hidden_size: 4096,
  intermediate_size: 14336,
  max_position_embeddings: 131072,
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_scaling: {
    factor: 8.0,
    high_freq_factor: 4.0,
    low_freq_factor: 1.0,
    original_max_position_embeddings: 8192,
    rope_type: "llama3",
  },
  rope_theta: 500000.0,
  tie_word_embeddings: false,
  torch_dtype: "bfloat16",
  vocab_size: 128256,
};

const MISTRAL_7B_V01 = {
  architectures: ["MistralForCausalLM"],
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_size: 4096,
  intermediate_size: 14336,
  max_position_embeddings: 32768,
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  sliding_window: 4096,
  tie_word_embeddings: false,
  torch_dtype: "bfloat16",
  vocab_size: 32000,
};

const QWEN25_05B = {
  architectures: ["Qwen2ForCausalLM"],
  bos_token_id: 151643,
  eos_token_id: 151645,
  hidden_size: 896,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 21,
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  use_sliding_window: false,
  vocab_size: 151936,
};

const QWEN3_06B = {
  architectures: ["Qwen3ForCausalLM"],
  attention_bias: false,
  bos_token_id: 151643,
  eos_token_id: 151645,
  head_dim: 128,
  hidden_size: 1024,
  intermediate_size: 3072,
  max_position_embeddings: 40960,
  max_window_layers: 28,
  num_attention_heads: 16,
  num_hidden_layers: 28,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: null,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  use_sliding_window: false,
  vocab_size: 151936,
};

describe("config.json", () => {
  test("Llama 3.1: GQA, explicit head_dim, llama3 rope scaling, a list of eos ids", () => {
    const config = parseModelConfig(LLAMA_31_8B, "config.json");
    expect(config).toEqual({
      architecture: "LlamaForCausalLM",
      vocabSize: 128256,
      hiddenSize: 4096,
      intermediateSize: 14336,
      numLayers: 32,
      numHeads: 32,
      numKvHeads: 8,
      headDim: 128,
      rmsNormEps: 1e-5,
      ropeTheta: 500000,
      ropeScaling: {
        type: "llama3",
        factor: 8,
        lowFreqFactor: 1,
        highFreqFactor: 4,
        originalMaxPositionEmbeddings: 8192,
      },
      maxPositionEmbeddings: 131072,
      tieWordEmbeddings: false,
      attentionBias: false,
      qkNorm: false,
      slidingWindow: null,
      layerTypes: Array(32).fill("full_attention"),
      rotaryDim: 128,
      localRopeTheta: null,
      hiddenAct: "silu",
      attentionScale: 1 / Math.sqrt(128),
      attnLogitSoftcapping: null,
      finalLogitSoftcapping: null,
      embeddingScale: null,
      normWeightsFromOne: false,
      sandwichNorms: false,
      tensorPrefix: "",
      moe: null,
      dtype: "bf16",
      bosTokenId: 128000,
      eosTokenIds: [128001, 128008, 128009],
    } satisfies ModelConfig);
  });

  test("Mistral: head_dim derived from hidden_size, sliding window kept", () => {
    const config = parseModelConfig(MISTRAL_7B_V01, "config.json");
    expect(config.headDim).toBe(128);
    expect(config.slidingWindow).toBe(4096);
    expect(config.eosTokenIds).toEqual([2]);
    expect(config.attentionBias).toBe(false);
    expect(parseModelConfig({ ...MISTRAL_7B_V01, sliding_window: null }, "config.json").slidingWindow).toBeNull();
  });

  test("Qwen2: q/k/v biases always, tied embeddings, sliding window off unless use_sliding_window", () => {
    const config = parseModelConfig(QWEN25_05B, "config.json");
    expect(config.attentionBias).toBe(true);
    expect(config.tieWordEmbeddings).toBe(true);
    expect(config.headDim).toBe(64);
    expect(config.numKvHeads).toBe(2);
    expect(config.qkNorm).toBe(false);
    expect(config.slidingWindow).toBeNull();
    const everyLayer = { ...QWEN25_05B, use_sliding_window: true, max_window_layers: 0, sliding_window: 1024 };
    expect(parseModelConfig(everyLayer, "config.json").slidingWindow).toBe(1024);
  });

  test("Qwen3: per-head q/k norm, head_dim independent of hidden_size, no bias", () => {
    const config = parseModelConfig(QWEN3_06B, "config.json");
    expect(config.qkNorm).toBe(true);
    expect(config.headDim).toBe(128);
    expect(config.numHeads * config.headDim).not.toBe(config.hiddenSize);
    expect(config.attentionBias).toBe(false);
    expect(config.slidingWindow).toBeNull();
  });

  test("defaults: kv heads = heads, bfloat16, no rope scaling, no eos", () => {
    const config = parseModelConfig(
      {
        architectures: ["LlamaForCausalLM"],
        hidden_size: 256,
        intermediate_size: 512,
        num_hidden_layers: 2,
        num_attention_heads: 8,
        vocab_size: 1000,
      },
      "config.json",
    );
    expect(config.numKvHeads).toBe(8);
    expect(config.headDim).toBe(32);
    expect(config.dtype).toBe("bf16");
    expect(config.ropeScaling).toBeNull();
    expect(config.ropeTheta).toBe(10000);
    expect(config.tieWordEmbeddings).toBe(false);
    expect(config.bosTokenId).toBeNull();
    expect(config.eosTokenIds).toEqual([]);
  });

  test("newer configs say dtype instead of torch_dtype; rope_scaling type default means none", () => {
    const config = parseModelConfig(
      { ...LLAMA_31_8B, torch_dtype: undefined, dtype: "float16", rope_scaling: { rope_type: "default" } },
      "c",
    );
    expect(config.dtype).toBe("f16");
    expect(config.ropeScaling).toBeNull();
  });

  test("perTokenKvBytes counts K and V of every layer", () => {
    const config = parseModelConfig(LLAMA_31_8B, "config.json");
    expect(perTokenKvBytes(config, 2)).toBe(2 * 32 * 8 * 128 * 2);
  });
});

describe("random models through the loader", () => {
  for (const dtype of ["float32", "float16", "bfloat16"] as TorchDtypeName[]) {
    for (const sharded of [false, true]) {
      test(`${dtype} ${sharded ? "sharded" : "single-file"} weights read back exactly as written`, async () => {
        const model = await randomModel({ dtype, sharded, numHeads: 4, numKvHeads: 2, seed: 5 });
        const store = openSafetensors(model.dir);
        expect(store.names().sort()).toEqual([...model.weights.keys()].sort());
        for (const [name, values] of model.weights) {
          const tensor = store.tensor(name);
          expect(tensor.dtype).toBe(dtypeOfTorchName(dtype));
          expect(tensor.shape.reduce((a, b) => a * b, 1)).toBe(values.length);
          expect(decodeToF32(tensor.bytes, dtypeOfTorchName(dtype))).toEqual(values);
        }
        expect(await Bun.file(join(model.dir, "model.safetensors.index.json")).exists()).toBe(sharded);
      });
    }
  }

  test("a sharded model spreads its tensors over two files", async () => {
    const model = await randomModel({ sharded: true });
    const index = await Bun.file(join(model.dir, "model.safetensors.index.json")).json();
    expect(new Set(Object.values(index.weight_map)).size).toBe(2);
  });

  test("weight names and shapes follow Hugging Face, with GQA k/v projections", async () => {
    const model = await randomModel({ hiddenSize: 32, intermediateSize: 48, numHeads: 4, numKvHeads: 2, numLayers: 1 });
    const store = openSafetensors(model.dir);
    expect(store.tensor("model.embed_tokens.weight").shape).toEqual([model.config.vocabSize, 32]);
    expect(store.tensor("model.layers.0.self_attn.q_proj.weight").shape).toEqual([32, 32]);
    expect(store.tensor("model.layers.0.self_attn.k_proj.weight").shape).toEqual([16, 32]);
    expect(store.tensor("model.layers.0.self_attn.v_proj.weight").shape).toEqual([16, 32]);
    expect(store.tensor("model.layers.0.self_attn.o_proj.weight").shape).toEqual([32, 32]);
    expect(store.tensor("model.layers.0.mlp.gate_proj.weight").shape).toEqual([48, 32]);
    expect(store.tensor("model.layers.0.mlp.down_proj.weight").shape).toEqual([32, 48]);
    expect(store.tensor("lm_head.weight").shape).toEqual([model.config.vocabSize, 32]);
    expect(store.has("model.layers.0.self_attn.q_proj.bias")).toBe(false);
    expect(model.config.numKvHeads).toBe(2);
  });

  test("tied embeddings leave out lm_head.weight", async () => {
    const model = await randomModel({ tieWordEmbeddings: true, numLayers: 1 });
    expect(model.config.tieWordEmbeddings).toBe(true);
    expect(openSafetensors(model.dir).has("lm_head.weight")).toBe(false);
  });

  test("Qwen2 has q/k/v biases; Qwen3 has q/k norms over head_dim", async () => {
    const qwen2 = await randomModel({ architecture: "Qwen2ForCausalLM", numLayers: 1 });
    expect(qwen2.config.attentionBias).toBe(true);
    for (const projection of ["q", "k", "v"])
      expect(qwen2.weights.has(`model.layers.0.self_attn.${projection}_proj.bias`)).toBe(true);
    expect(qwen2.weights.has("model.layers.0.self_attn.o_proj.bias")).toBe(false);

    const qwen3 = await randomModel({
      architecture: "Qwen3ForCausalLM",
      hiddenSize: 32,
      numHeads: 4,
      headDim: 16,
      numLayers: 1,
    });
    expect(qwen3.config.qkNorm).toBe(true);
    expect(qwen3.config.headDim).toBe(16);
    expect(openSafetensors(qwen3.dir).tensor("model.layers.0.self_attn.q_norm.weight").shape).toEqual([16]);
    expect(openSafetensors(qwen3.dir).tensor("model.layers.0.self_attn.q_proj.weight").shape).toEqual([64, 32]);
    expect(qwen3.weights.has("model.layers.0.self_attn.q_proj.bias")).toBe(false);
  });

  test("Llama with llama3 rope scaling and Mistral with a sliding window round-trip their config", async () => {
    const ropeScaling = {
      type: "llama3",
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 64,
    } as const;
    const llama = await randomModel({ ropeScaling, numLayers: 1 });
    expect(llama.config.ropeScaling).toEqual(ropeScaling);
    const mistral = await randomModel({ architecture: "MistralForCausalLM", slidingWindow: 16, numLayers: 1 });
    expect(mistral.config.slidingWindow).toBe(16);
  });

  test("weights are what their dtype can hold, norms sit near 1, and the seed changes them", async () => {
    const a = await randomModel({ dtype: "bfloat16", numLayers: 1, seed: 1 });
    const b = await randomModel({ dtype: "bfloat16", numLayers: 1, seed: 2 });
    const embedding = a.weights.get("model.embed_tokens.weight")!;
    for (const value of embedding) expect(bf16BitsToF32(f32ToBf16Bits(value))).toBe(value);
    for (const value of a.weights.get("model.norm.weight")!) expect(Math.abs(value - 1)).toBeLessThanOrEqual(0.1);
    expect(b.weights.get("model.embed_tokens.weight")).not.toEqual(embedding);
    const q = a.weights.get("model.layers.0.self_attn.q_proj.weight")!;
    const k = a.weights.get("model.layers.0.self_attn.k_proj.weight")!;
    expect(q.slice(0, 8)).not.toEqual(k.slice(0, 8));
  });

  test("the model's tokenizer loads in @huggingface/tokenizers and round-trips ASCII", async () => {
    const model = await randomModel({ numLayers: 1 });
    const tokenizer = new Tokenizer(
      await Bun.file(join(model.dir, "tokenizer.json")).json(),
      await Bun.file(join(model.dir, "tokenizer_config.json")).json(),
    );
    const text = "hello the world!\n\tIt's 42 ~ `ok`?";
    const { ids } = tokenizer.encode(text);
    expect(ids.length).toBeLessThan(text.length);
    expect(Math.max(...ids)).toBeLessThan(model.config.vocabSize);
    expect(tokenizer.decode(ids)).toBe(text);
    const { vocabSize, specialTokenIds } = tinyTokenizerFiles();
    expect(vocabSize).toBeLessThan(300);
    expect(tokenizer.encode("<|im_start|>user<|im_end|>").ids).toEqual([
      specialTokenIds["<|im_start|>"],
      tokenizer.token_to_id("u")!,
      tokenizer.token_to_id("s")!,
      tokenizer.token_to_id("er")!,
      specialTokenIds["<|im_end|>"],
    ]);
    expect(model.config.eosTokenIds).toEqual([specialTokenIds["<|im_end|>"]]);
  });
});

describe("generation_config.json", () => {
  test("a random model ships eos and bos ids only, so sampling stays as requested", async () => {
    const model = await randomModel({ numLayers: 1 });
    const { specialTokenIds } = tinyTokenizerFiles();
    expect(await loadGenerationConfig(model.dir)).toEqual({
      eosTokenIds: [specialTokenIds["<|im_end|>"], specialTokenIds["<|endoftext|>"]],
      bosTokenId: specialTokenIds["<|endoftext|>"],
    });
  });

  test("sampling defaults are read with camelCase names", () => {
    const config = parseGenerationConfig(
      {
        do_sample: true,
        temperature: 0.7,
        top_p: 0.8,
        top_k: 20,
        min_p: 0,
        repetition_penalty: 1.05,
        max_new_tokens: 256,
        eos_token_id: 2,
      },
      "generation_config.json",
    );
    expect(config).toEqual({
      temperature: 0.7,
      topP: 0.8,
      topK: 20,
      minP: 0,
      repetitionPenalty: 1.05,
      maxNewTokens: 256,
      eosTokenIds: [2],
    });
  });

  test("an absent file means no defaults", async () => {
    const model = await randomModel({ numLayers: 1 });
    await rm(join(model.dir, "generation_config.json"));
    expect(await loadGenerationConfig(model.dir)).toEqual({});
  });
});

describe("dtype conversion", () => {
  test("f16 rounds to nearest even, overflows to infinity and keeps subnormals", () => {
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // halfway, even stays
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // halfway, odd rounds up
    expect(f32ToF16Bits(65520)).toBe(0x7c00);
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001);
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(f16BitsToF32(0x3555)).toBe(Math.fround(0.333251953125));
  });

  test("bf16 rounds to nearest even and keeps NaN a NaN", () => {
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80);
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(Number.isNaN(bf16BitsToF32(f32ToBf16Bits(NaN)))).toBe(true);
  });
});
