// Gemma 2, Gemma 3 and Phi-3 config.json files read into what their forward needs, and every
// field of theirs the engine does not implement refused with the field named.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Backend } from "../../src/backend/backend.ts";
import { layerRope, layerSlidingWindow, loadModelConfig, parseModelConfig } from "../../src/model/config.ts";
import { ModelLoadError } from "../../src/model/errors.ts";
import { loadModelWeights, resolveModel } from "../../src/model/load-model.ts";
import { writeRandomModel } from "../helpers/random-model.ts";

/** The shape of google/gemma-2-9b's config.json. */
const GEMMA2_9B = {
  architectures: ["Gemma2ForCausalLM"],
  attn_logit_softcapping: 50.0,
  bos_token_id: 2,
  eos_token_id: 1,
  final_logit_softcapping: 30.0,
  head_dim: 256,
  hidden_activation: "gelu_pytorch_tanh",
  hidden_size: 3584,
  intermediate_size: 14336,
  max_position_embeddings: 8192,
  model_type: "gemma2",
  num_attention_heads: 16,
  num_hidden_layers: 42,
  num_key_value_heads: 8,
  query_pre_attn_scalar: 256,
  rms_norm_eps: 1e-6,
  rope_theta: 10000.0,
  sliding_window: 4096,
  torch_dtype: "bfloat16",
  vocab_size: 256000,
};

/** The shape of google/gemma-3-1b-it's config.json. */
const GEMMA3_1B = {
  architectures: ["Gemma3ForCausalLM"],
  attn_logit_softcapping: null,
  bos_token_id: 2,
  eos_token_id: [1, 106],
  final_logit_softcapping: null,
  head_dim: 256,
  hidden_activation: "gelu_pytorch_tanh",
  hidden_size: 1152,
  intermediate_size: 6912,
  max_position_embeddings: 32768,
  model_type: "gemma3_text",
  num_attention_heads: 4,
  num_hidden_layers: 26,
  num_key_value_heads: 1,
  query_pre_attn_scalar: 256,
  rms_norm_eps: 1e-6,
  rope_local_base_freq: 10000,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: 512,
  sliding_window_pattern: 6,
  torch_dtype: "bfloat16",
  vocab_size: 262144,
};

const REPOSITORY = join(import.meta.dir, "../..");

async function problem(run: () => unknown): Promise<string> {
  try {
    await run();
  } catch (error) {
    expect(error).toBeInstanceOf(ModelLoadError);
    return (error as ModelLoadError).problem;
  }
  throw new Error("expected a ModelLoadError, but loading succeeded");
}

describe("Gemma config.json", () => {
  test("Gemma 2: alternating sliding and global layers, soft-capping, query_pre_attn_scalar, tied head", () => {
    const config = parseModelConfig(GEMMA2_9B, "config.json");
    expect(config.layerTypes.slice(0, 4)).toEqual([
      "sliding_attention",
      "full_attention",
      "sliding_attention",
      "full_attention",
    ]);
    expect(layerSlidingWindow(config, 0)).toBe(4096);
    expect(layerSlidingWindow(config, 1)).toBe(0);
    expect(config.attentionScale).toBe(1 / 16);
    expect(config.attnLogitSoftcapping).toBe(50);
    expect(config.finalLogitSoftcapping).toBe(30);
    expect(config.embeddingScale).toBe(Math.sqrt(3584));
    expect(config.hiddenAct).toBe("gelu_pytorch_tanh");
    expect(config.tieWordEmbeddings).toBe(true);
    expect(config.normWeightsFromOne && config.sandwichNorms).toBe(true);
    expect(config.qkNorm).toBe(false);
    expect(layerRope(config, 0)).toEqual(layerRope(config, 1));
  });

  test("Gemma 2: soft-capping takes transformers' defaults when absent, and null switches it off", () => {
    const { attn_logit_softcapping: _, final_logit_softcapping: __, ...defaults } = GEMMA2_9B;
    const absent = parseModelConfig(defaults, "config.json");
    expect([absent.attnLogitSoftcapping, absent.finalLogitSoftcapping]).toEqual([50, 30]);
    const off = parseModelConfig({ ...GEMMA2_9B, final_logit_softcapping: null }, "config.json");
    expect(off.finalLogitSoftcapping).toBeNull();
  });

  test("Gemma 3: every sixth layer global, q/k norms, a local RoPE theta on the sliding layers", () => {
    const config = parseModelConfig(GEMMA3_1B, "config.json");
    const globals = config.layerTypes.flatMap((type, layer) => (type === "full_attention" ? [layer] : []));
    expect(globals).toEqual([5, 11, 17, 23]);
    expect(config.qkNorm).toBe(true);
    expect(layerRope(config, 0)).toEqual({ theta: 10000, scaling: null });
    expect(layerRope(config, 5)).toEqual({ theta: 1000000, scaling: null });
    expect([config.attnLogitSoftcapping, config.finalLogitSoftcapping]).toEqual([null, null]);
    expect(config.eosTokenIds).toEqual([1, 106]);
  });

  test("Gemma 3: layer_types, when given, says which layers slide", () => {
    const layerTypes = Array.from({ length: 26 }, (_, i) => (i < 2 ? "full_attention" : "sliding_attention"));
    const config = parseModelConfig({ ...GEMMA3_1B, layer_types: layerTypes }, "config.json");
    expect(config.layerTypes).toEqual(layerTypes);
  });

  test("bench/models/gemma-3-4b: linear RoPE scaling on the global layers only", async () => {
    const config = await loadModelConfig(join(REPOSITORY, "bench/models/gemma-3-4b"));
    expect(config.architecture).toBe("Gemma3ForCausalLM");
    expect(layerRope(config, 5)).toEqual({ theta: 1000000, scaling: { type: "linear", factor: 8 } });
    expect(layerRope(config, 4)).toEqual({ theta: 10000, scaling: null });
    expect(layerSlidingWindow(config, 4)).toBe(1024);
  });

  test("a checkpoint with a vision tower is read as its language model, text_config's gaps at transformers' defaults", () => {
    // The shape of google/gemma-3-4b-it's config.json (vision_config abridged).
    const multimodal = {
      architectures: ["Gemma3ForConditionalGeneration"],
      eos_token_id: [1, 106],
      model_type: "gemma3",
      text_config: {
        hidden_size: 2560,
        intermediate_size: 10240,
        model_type: "gemma3_text",
        num_hidden_layers: 34,
        rope_scaling: { factor: 8.0, rope_type: "linear" },
        sliding_window: 1024,
      },
      torch_dtype: "bfloat16",
      vision_config: { model_type: "siglip_vision_model", hidden_size: 1152 },
    };
    const config = parseModelConfig(multimodal, "config.json");
    const bench = parseModelConfig(
      JSON.parse(readFileSync(join(REPOSITORY, "bench/models/gemma-3-4b/config.json"), "utf8")),
      "config.json",
    );
    expect({ ...config, tensorPrefix: "" }).toEqual(bench);
    expect(config.tensorPrefix).toBe("language_model.");
    expect(config.eosTokenIds).toEqual([1, 106]);
  });

  test("a checkpoint with a vision tower but no text_config is refused", async () => {
    expect(await problem(() => parseModelConfig({ architectures: ["Gemma3ForConditionalGeneration"] }, "c.json"))).toBe(
      'Gemma3ForConditionalGeneration needs a "text_config" object',
    );
  });

  test("fields that change the math are required or refused when the engine does not implement them", async () => {
    const { query_pre_attn_scalar: _, ...noScalar } = GEMMA2_9B;
    expect(await problem(() => parseModelConfig(noScalar, "c.json"))).toBe(
      'missing required field "query_pre_attn_scalar"',
    );
    const { head_dim: __, ...noHeadDim } = GEMMA2_9B;
    expect(await problem(() => parseModelConfig(noHeadDim, "c.json"))).toBe('missing required field "head_dim"');
    expect(await problem(() => parseModelConfig({ ...GEMMA2_9B, hidden_activation: "gelu" }, "c.json"))).toBe(
      'unsupported "hidden_activation" "gelu" for Gemma2ForCausalLM (supported: gelu_pytorch_tanh)',
    );
    expect(await problem(() => parseModelConfig({ ...GEMMA3_1B, layer_types: ["full_attention"] }, "c.json"))).toBe(
      '"layer_types" must be a list of 26 "sliding_attention" or "full_attention", got ["full_attention"]',
    );
    expect(await problem(() => parseModelConfig({ ...GEMMA2_9B, final_logit_softcapping: -1 }, "c.json"))).toBe(
      '"final_logit_softcapping" must be a positive number, got -1',
    );
    expect(await problem(() => parseModelConfig({ ...GEMMA3_1B, use_bidirectional_attention: true }, "c.json"))).toBe(
      `"use_bidirectional_attention" (an embedding model's attention) is not supported`,
    );
  });
});

/** The shape of microsoft/Phi-3-mini-4k-instruct's config.json. */
async function phi3Mini() {
  return await loadModelConfig(join(REPOSITORY, "bench/models/phi-3-mini"));
}

describe("Phi-3 config.json", () => {
  test("Phi-3 mini: a sliding window on every layer, full rotary, an untied head", async () => {
    const config = await phi3Mini();
    expect(config.architecture).toBe("Phi3ForCausalLM");
    expect(config.layerTypes.every((type) => type === "sliding_attention")).toBe(true);
    expect(layerSlidingWindow(config, 31)).toBe(2047);
    expect(config.rotaryDim).toBe(96);
    expect(config.tieWordEmbeddings).toBe(false);
  });

  test("partial_rotary_factor rotates that share of each head", async () => {
    const json = await Bun.file(join(REPOSITORY, "bench/models/phi-3-mini/config.json")).json();
    expect(parseModelConfig({ ...json, partial_rotary_factor: 0.5 }, "c.json").rotaryDim).toBe(48);
    expect(await problem(() => parseModelConfig({ ...json, partial_rotary_factor: 0.3 }, "c.json"))).toBe(
      '"partial_rotary_factor" 0.3 must give an even number of rotated dims of "head_dim" 96',
    );
  });

  test("the long-context RoPE (longrope, formerly su) and other activations are refused", async () => {
    const json = await Bun.file(join(REPOSITORY, "bench/models/phi-3-mini/config.json")).json();
    for (const type of ["longrope", "su"]) {
      const scaling = { type, short_factor: [1], long_factor: [1] };
      expect(await problem(() => parseModelConfig({ ...json, rope_scaling: scaling }, "c.json"))).toBe(
        `rope_scaling type "${type}" (the long-context RoPE of Phi-3's 128k checkpoints) is not implemented`,
      );
    }
    expect(await problem(() => parseModelConfig({ ...json, hidden_act: "gelu" }, "c.json"))).toBe(
      'unsupported "hidden_act" "gelu" for Phi3ForCausalLM (supported: silu)',
    );
  });
});

describe("checkpoint tensors are checked against the config", () => {
  test("Phi-3's fused qkv_proj must have the rows of q, k and v together", async () => {
    const model = await writeRandomModel({
      architecture: "Phi3ForCausalLM",
      numLayers: 1,
      hiddenSize: 32,
      numHeads: 2,
    });
    const file = join(model.dir, "config.json");
    await Bun.write(file, JSON.stringify({ ...(await Bun.file(file).json()), num_key_value_heads: 1 }));
    const backend = await Backend.open({ device: "cpu" });
    try {
      const source = await resolveModel(model.dir);
      expect(await problem(() => loadModelWeights(backend, source))).toBe(
        "tensor model.layers.0.self_attn.qkv_proj.weight has shape [96,32] but the model's config implies [64,32]",
      );
    } finally {
      backend.close();
    }
  });

  test("a Gemma config over a checkpoint without Gemma's extra norms names the missing tensor", async () => {
    const model = await writeRandomModel({
      architecture: "LlamaForCausalLM",
      numLayers: 1,
      hiddenSize: 32,
      numHeads: 2,
    });
    const file = join(model.dir, "config.json");
    const gemma = {
      ...GEMMA2_9B,
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 1,
      num_attention_heads: 2,
    };
    await Bun.write(
      file,
      JSON.stringify({
        ...gemma,
        num_key_value_heads: 2,
        head_dim: 16,
        vocab_size: model.config.vocabSize,
        torch_dtype: "float32",
      }),
    );
    const backend = await Backend.open({ device: "cpu" });
    try {
      const source = await resolveModel(model.dir);
      expect(await problem(() => loadModelWeights(backend, source))).toContain("pre_feedforward_layernorm");
    } finally {
      backend.close();
    }
  });
});
