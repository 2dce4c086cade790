// Writes a small random-weight model in the real Hugging Face layout (config.json, safetensors,
// tokenizer, generation_config.json) so loaders and forwards are tested on the formats they meet
// in the wild. Weights come from the vt_fill_uniform hash, scaled so that logits have clear
// margins and greedy choices are not near-ties.

import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DType, dtypeOfTorchName, roundToDtype, type TorchDtypeName } from "../../src/backend/dtype.ts";
import { type Architecture, loadModelConfig, type ModelConfig, type RopeScaling } from "../../src/model/config.ts";
import { type TensorToWrite, writeSafetensors } from "../../src/model/safetensors-writer.ts";
import { fillUniform } from "../../src/model/uniform-hash.ts";
import { type SpecialToken, tinyTokenizerFiles } from "./tiny-tokenizer.ts";

/** The smallest shape most engine tests use: two layers, four heads over two KV heads, f32. */
export const TINY_SHAPE = {
  dtype: "float32",
  hiddenSize: 64,
  intermediateSize: 96,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
} as const;

export interface RandomModelOptions {
  architecture?: Architecture;
  /** config.json's torch_dtype. */
  dtype?: TorchDtypeName;
  hiddenSize?: number;
  intermediateSize?: number;
  numLayers?: number;
  numHeads?: number;
  numKvHeads?: number;
  /** Written as head_dim when given; otherwise config.json leaves it to hidden / heads. */
  headDim?: number;
  vocabSize?: number;
  tieWordEmbeddings?: boolean;
  /** q/k/v biases for Llama, Mistral and Qwen3 (Qwen2 always has them). */
  attentionBias?: boolean;
  ropeScaling?: RopeScaling;
  /** Mistral, Phi-3: sliding_window; Qwen2/3: use_sliding_window on every layer; Gemma: the window
   * of its sliding layers (default 4096). */
  slidingWindow?: number;
  /** Gemma 3: every n-th layer is global (config.json's sliding_window_pattern). */
  slidingWindowPattern?: number;
  /** Gemma: config.json's attn_logit_softcapping and final_logit_softcapping (null: off). */
  attnLogitSoftcapping?: number | null;
  finalLogitSoftcapping?: number | null;
  /** Gemma: query_pre_attn_scalar (default head_dim). */
  queryPreAttnScalar?: number;
  /** Qwen2/3-MoE and Mixtral: the experts (Mixtral's intermediate_size is their width). */
  experts?: RandomExperts;
  /** Phi-3: partial_rotary_factor. */
  partialRotaryFactor?: number;
  /** Gemma 3: written as Gemma3ForConditionalGeneration, the language model's fields in text_config
   * and its tensors under "language_model.", beside a vision tower's tensor. */
  visionTower?: boolean;
  maxPositionEmbeddings?: number;
  seed?: number;
  /** Split the weights over two files named by model.safetensors.index.json. */
  sharded?: boolean;
  /** Extra keys for generation_config.json (sampling defaults, say). */
  generationConfig?: Record<string, unknown>;
}

export interface RandomExperts {
  numExperts: number;
  topK: number;
  width: number;
  /** Qwen2/3-MoE: norm_topk_prob (default true), decoder_sparse_step and mlp_only_layers. */
  normTopkProb?: boolean;
  decoderSparseStep?: number;
  mlpOnlyLayers?: number[];
  /** Qwen2-MoE: shared_expert_intermediate_size (required there). */
  sharedWidth?: number;
}

/** Which layers are sparse, by transformers' rule for Qwen's configs (all of Mixtral's). */
function sparseLayersOf(experts: RandomExperts, numLayers: number): boolean[] {
  const step = experts.decoderSparseStep ?? 1;
  const dense = experts.mlpOnlyLayers ?? [];
  return Array.from({ length: numLayers }, (_, layer) => !dense.includes(layer) && (layer + 1) % step === 0);
}

export interface RandomModel {
  dir: string;
  config: ModelConfig;
  /** Every tensor as stored: already rounded to the dtype, widened back to f32. */
  weights: Map<string, Float32Array>;
}

const MODEL_TYPE: Record<Architecture, string> = {
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "mistral",
  Qwen2ForCausalLM: "qwen2",
  Qwen3ForCausalLM: "qwen3",
  Gemma2ForCausalLM: "gemma2",
  Gemma3ForCausalLM: "gemma3_text",
  Phi3ForCausalLM: "phi3",
  Qwen2MoeForCausalLM: "qwen2_moe",
  Qwen3MoeForCausalLM: "qwen3_moe",
  MixtralForCausalLM: "mixtral",
};

type Resolved = RandomModelOptions &
  Required<
    Pick<
      RandomModelOptions,
      | "architecture"
      | "dtype"
      | "hiddenSize"
      | "intermediateSize"
      | "numLayers"
      | "numHeads"
      | "numKvHeads"
      | "vocabSize"
      | "tieWordEmbeddings"
      | "attentionBias"
      | "maxPositionEmbeddings"
      | "seed"
      | "sharded"
    >
  >;

const isGemma = (architecture: Architecture) =>
  architecture === "Gemma2ForCausalLM" || architecture === "Gemma3ForCausalLM";

/** Gemma's own fields, as its transformers configs write them. */
function gemmaConfigJson(options: Resolved, headDim: number): Record<string, unknown> {
  const gemma3 = options.architecture === "Gemma3ForCausalLM";
  const json: Record<string, unknown> = {
    hidden_activation: "gelu_pytorch_tanh",
    rms_norm_eps: 1e-6,
    head_dim: headDim,
    query_pre_attn_scalar: options.queryPreAttnScalar ?? headDim,
    sliding_window: options.slidingWindow ?? 4096,
    attn_logit_softcapping: options.attnLogitSoftcapping ?? null,
    final_logit_softcapping: options.finalLogitSoftcapping ?? null,
    rope_theta: gemma3 ? 1000000 : 10000,
  };
  if (gemma3) {
    json.rope_local_base_freq = 10000;
    json.sliding_window_pattern = options.slidingWindowPattern ?? 6;
  }
  return json;
}

function ropeScalingJson(scaling: RopeScaling | undefined): Record<string, unknown> | null {
  if (!scaling) return null;
  if (scaling.type === "linear") return { rope_type: "linear", factor: scaling.factor };
  return {
    rope_type: "llama3",
    factor: scaling.factor,
    low_freq_factor: scaling.lowFreqFactor,
    high_freq_factor: scaling.highFreqFactor,
    original_max_position_embeddings: scaling.originalMaxPositionEmbeddings,
  };
}

function configJson(options: Resolved, specialIds: Record<SpecialToken, number>): Record<string, unknown> {
  const { architecture, slidingWindow, ropeScaling } = options;
  const isQwen =
    architecture === "Qwen2ForCausalLM" ||
    architecture === "Qwen3ForCausalLM" ||
    architecture === "Qwen2MoeForCausalLM" ||
    architecture === "Qwen3MoeForCausalLM";
  const json: Record<string, unknown> = {
    architectures: [architecture],
    model_type: MODEL_TYPE[architecture],
    hidden_act: "silu",
    hidden_size: options.hiddenSize,
    intermediate_size: options.intermediateSize,
    num_hidden_layers: options.numLayers,
    num_attention_heads: options.numHeads,
    num_key_value_heads: options.numKvHeads,
    rms_norm_eps: isQwen ? 1e-6 : 1e-5,
    rope_theta: isQwen ? 1000000 : 10000,
    rope_scaling: ropeScalingJson(ropeScaling),
    max_position_embeddings: options.maxPositionEmbeddings,
    tie_word_embeddings: options.tieWordEmbeddings,
    vocab_size: options.vocabSize,
    torch_dtype: options.dtype,
    bos_token_id: specialIds["<|endoftext|>"],
    eos_token_id: specialIds["<|im_end|>"],
    use_cache: true,
  };
  if (options.headDim !== undefined) json.head_dim = options.headDim;
  // Qwen2's q/k/v always have biases; Qwen2-MoE's by its qkv_bias.
  if (architecture === "Qwen2MoeForCausalLM") json.qkv_bias = options.attentionBias;
  else if (architecture !== "Qwen2ForCausalLM") json.attention_bias = options.attentionBias;
  if (
    architecture === "MistralForCausalLM" ||
    architecture === "MixtralForCausalLM" ||
    architecture === "Phi3ForCausalLM"
  )
    json.sliding_window = slidingWindow ?? null;
  const experts = options.experts;
  if (experts && architecture === "MixtralForCausalLM") {
    Object.assign(json, {
      num_local_experts: experts.numExperts,
      num_experts_per_tok: experts.topK,
      intermediate_size: experts.width,
    });
  } else if (experts) {
    Object.assign(json, {
      num_experts: experts.numExperts,
      num_experts_per_tok: experts.topK,
      moe_intermediate_size: experts.width,
      norm_topk_prob: experts.normTopkProb ?? true,
      decoder_sparse_step: experts.decoderSparseStep ?? 1,
      mlp_only_layers: experts.mlpOnlyLayers ?? [],
    });
    if (architecture === "Qwen2MoeForCausalLM") json.shared_expert_intermediate_size = experts.sharedWidth;
  }
  if (architecture === "Phi3ForCausalLM" && options.partialRotaryFactor !== undefined)
    json.partial_rotary_factor = options.partialRotaryFactor;
  if (isGemma(architecture)) {
    delete json.hidden_act;
    Object.assign(json, gemmaConfigJson(options, options.headDim ?? options.hiddenSize / options.numHeads));
  }
  if (isQwen) {
    // As shipped: a window value that stays off unless use_sliding_window says otherwise.
    json.use_sliding_window = slidingWindow !== undefined;
    json.sliding_window = slidingWindow ?? 4096;
    json.max_window_layers = slidingWindow !== undefined ? 0 : options.numLayers;
  }
  return options.visionTower ? withVisionTower(json) : json;
}

/** A Gemma3ForConditionalGeneration config.json around a language model's. */
function withVisionTower(text: Record<string, unknown>): Record<string, unknown> {
  const { architectures: _, torch_dtype, bos_token_id, eos_token_id, ...textConfig } = text;
  return {
    architectures: ["Gemma3ForConditionalGeneration"],
    model_type: "gemma3",
    torch_dtype,
    bos_token_id,
    eos_token_id,
    text_config: textConfig,
    vision_config: { model_type: "siglip_vision_model", hidden_size: 8, patch_size: 2 },
  };
}

/** A tensor of the vision tower, which a text-only engine must leave unread. */
const VISION_TOWER_TENSOR: TensorSpec = {
  name: "vision_tower.vision_model.embeddings.patch_embedding.weight",
  shape: [8, 3, 2, 2],
  scale: 0.1,
  offset: 0,
};

interface TensorSpec {
  name: string;
  shape: number[];
  scale: number;
  /** Norm weights sit around 1 rather than around 0. */
  offset: number;
}

/** What the tensors' names and shapes depend on. */
export type ModelShape = Pick<
  ModelConfig,
  | "architecture"
  | "hiddenSize"
  | "intermediateSize"
  | "numLayers"
  | "numHeads"
  | "numKvHeads"
  | "headDim"
  | "vocabSize"
  | "tieWordEmbeddings"
  | "attentionBias"
> &
  Partial<Pick<ModelConfig, "tensorPrefix" | "moe">>;

function tensorSpecs(options: ModelShape): TensorSpec[] {
  const { hiddenSize, intermediateSize, numHeads, numKvHeads, vocabSize, headDim } = options;
  const linear = (name: string, outFeatures: number, inFeatures: number): TensorSpec =>
    // sqrt(3 / fan_in) gives outputs the variance of their inputs.
    ({ name, shape: [outFeatures, inFeatures], scale: Math.sqrt(3 / inFeatures), offset: 0 });
  const bias = (name: string, size: number): TensorSpec => ({ name, shape: [size], scale: 0.1, offset: 0 });
  const { architecture } = options;
  const model = `${options.tensorPrefix ?? ""}model`;
  const gemma = isGemma(architecture);
  const phi3 = architecture === "Phi3ForCausalLM";
  // Gemma stores norm weights as offsets from 1.
  const norm = (name: string, size: number): TensorSpec => ({ name, shape: [size], scale: 0.1, offset: gemma ? 0 : 1 });
  const hasBias = architecture === "Qwen2ForCausalLM" || options.attentionBias;
  const qSize = numHeads * headDim;
  const kvSize = numKvHeads * headDim;
  // Unit-scale embeddings (and an LM head like them, tied or not) make logits spread by several
  // units, so the top choice stands clear of the next.
  const specs: TensorSpec[] = [
    { name: `${model}.embed_tokens.weight`, shape: [vocabSize, hiddenSize], scale: 1, offset: 0 },
  ];
  for (let layer = 0; layer < options.numLayers; layer++) {
    const prefix = `${model}.layers.${layer}`;
    specs.push(norm(`${prefix}.input_layernorm.weight`, hiddenSize));
    if (phi3) specs.push(linear(`${prefix}.self_attn.qkv_proj.weight`, qSize + 2 * kvSize, hiddenSize));
    else
      specs.push(
        linear(`${prefix}.self_attn.q_proj.weight`, qSize, hiddenSize),
        linear(`${prefix}.self_attn.k_proj.weight`, kvSize, hiddenSize),
        linear(`${prefix}.self_attn.v_proj.weight`, kvSize, hiddenSize),
      );
    if (hasBias) {
      specs.push(
        bias(`${prefix}.self_attn.q_proj.bias`, qSize),
        bias(`${prefix}.self_attn.k_proj.bias`, kvSize),
        bias(`${prefix}.self_attn.v_proj.bias`, kvSize),
      );
    }
    if (
      architecture === "Qwen3ForCausalLM" ||
      architecture === "Qwen3MoeForCausalLM" ||
      architecture === "Gemma3ForCausalLM"
    ) {
      specs.push(
        norm(`${prefix}.self_attn.q_norm.weight`, headDim),
        norm(`${prefix}.self_attn.k_norm.weight`, headDim),
      );
    }
    specs.push(
      linear(`${prefix}.self_attn.o_proj.weight`, hiddenSize, qSize),
      norm(`${prefix}.post_attention_layernorm.weight`, hiddenSize),
    );
    if (gemma) specs.push(norm(`${prefix}.pre_feedforward_layernorm.weight`, hiddenSize));
    const moe = options.moe;
    if (moe?.sparseLayers[layer]) {
      const mixtral = architecture === "MixtralForCausalLM";
      const block = mixtral ? `${prefix}.block_sparse_moe` : `${prefix}.mlp`;
      const [gate, up, down] = mixtral ? ["w1", "w3", "w2"] : ["gate_proj", "up_proj", "down_proj"];
      const width = moe.expertIntermediateSize;
      specs.push(linear(`${block}.gate.weight`, moe.numExperts, hiddenSize));
      for (let e = 0; e < moe.numExperts; e++)
        specs.push(
          linear(`${block}.experts.${e}.${gate}.weight`, width, hiddenSize),
          linear(`${block}.experts.${e}.${up}.weight`, width, hiddenSize),
          linear(`${block}.experts.${e}.${down}.weight`, hiddenSize, width),
        );
      const sharedWidth = moe.sharedExpertIntermediateSize;
      if (sharedWidth !== null)
        specs.push(
          linear(`${block}.shared_expert.gate_proj.weight`, sharedWidth, hiddenSize),
          linear(`${block}.shared_expert.up_proj.weight`, sharedWidth, hiddenSize),
          linear(`${block}.shared_expert.down_proj.weight`, hiddenSize, sharedWidth),
          linear(`${block}.shared_expert_gate.weight`, 1, hiddenSize),
        );
    } else {
      if (phi3) specs.push(linear(`${prefix}.mlp.gate_up_proj.weight`, 2 * intermediateSize, hiddenSize));
      else
        specs.push(
          linear(`${prefix}.mlp.gate_proj.weight`, intermediateSize, hiddenSize),
          linear(`${prefix}.mlp.up_proj.weight`, intermediateSize, hiddenSize),
        );
      specs.push(linear(`${prefix}.mlp.down_proj.weight`, hiddenSize, intermediateSize));
    }
    if (gemma) specs.push(norm(`${prefix}.post_feedforward_layernorm.weight`, hiddenSize));
  }
  specs.push(norm(`${model}.norm.weight`, hiddenSize));
  if (!options.tieWordEmbeddings)
    specs.push({
      name: `${options.tensorPrefix ?? ""}lm_head.weight`,
      shape: [vocabSize, hiddenSize],
      scale: 1,
      offset: 0,
    });
  return specs;
}

/** The experts' shape as the tensors are written (the writer's own reading of its options). */
function writtenExperts(options: Resolved): ModelConfig["moe"] {
  const experts = options.experts;
  if (!experts) return null;
  return {
    numExperts: experts.numExperts,
    topK: experts.topK,
    expertIntermediateSize: experts.width,
    normTopkProb: experts.normTopkProb ?? true,
    sparseLayers:
      options.architecture === "MixtralForCausalLM"
        ? Array(options.numLayers).fill(true)
        : sparseLayersOf(experts, options.numLayers),
    sharedExpertIntermediateSize: options.architecture === "Qwen2MoeForCausalLM" ? experts.sharedWidth! : null,
  };
}

/** Tensor k takes hash indices from k * 2^32 on, so no two tensors share values. */
function storedValues(spec: TensorSpec, tensorIndex: number, seed: number, dtype: DType): Float32Array {
  const values = new Float32Array(spec.shape.reduce((product, dim) => product * dim, 1));
  fillUniform(values, seed, spec.scale, tensorIndex * 2 ** 32);
  for (let i = 0; i < values.length; i++) values[i] = roundToDtype(values[i]! + spec.offset, dtype);
  return values;
}

/**
 * The weights writeRandomModel would write for a model of this shape, without writing them: for
 * writers of other formats (GGUF) at shapes too large to go through a safetensors file first.
 */
export function randomModelWeights(shape: ModelShape, seed: number, dtype: DType): Map<string, Float32Array> {
  return new Map(tensorSpecs(shape).map((spec, index) => [spec.name, storedValues(spec, index, seed, dtype)]));
}

async function writeWeights(dir: string, tensors: [string, TensorToWrite][], sharded: boolean): Promise<void> {
  if (!sharded) {
    await writeSafetensors(join(dir, "model.safetensors"), Object.fromEntries(tensors));
    return;
  }
  const half = Math.ceil(tensors.length / 2);
  const shards = [tensors.slice(0, half), tensors.slice(half)];
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (const [i, shard] of shards.entries()) {
    const fileName = `model-0000${i + 1}-of-0000${shards.length}.safetensors`;
    await writeSafetensors(join(dir, fileName), Object.fromEntries(shard));
    for (const [name, tensor] of shard) {
      weightMap[name] = fileName;
      totalSize += tensor.data.byteLength;
    }
  }
  const index = { metadata: { total_size: totalSize }, weight_map: weightMap };
  await Bun.write(join(dir, "model.safetensors.index.json"), JSON.stringify(index, null, 2));
}

export async function writeRandomModel(options: RandomModelOptions = {}): Promise<RandomModel> {
  const tokenizer = tinyTokenizerFiles();
  const numHeads = options.numHeads ?? 4;
  const hiddenSize = options.hiddenSize ?? 64;
  const resolved: Resolved = {
    ...options,
    architecture: options.architecture ?? "LlamaForCausalLM",
    dtype: options.dtype ?? "float32",
    hiddenSize,
    intermediateSize: options.intermediateSize ?? 2 * hiddenSize,
    numLayers: options.numLayers ?? 2,
    numHeads,
    numKvHeads: options.numKvHeads ?? numHeads,
    vocabSize: options.vocabSize ?? tokenizer.vocabSize,
    tieWordEmbeddings: options.tieWordEmbeddings ?? false,
    attentionBias: options.attentionBias ?? false,
    maxPositionEmbeddings: options.maxPositionEmbeddings ?? 512,
    seed: options.seed ?? 0,
    sharded: options.sharded ?? false,
  };
  const headDim = options.headDim ?? hiddenSize / numHeads;
  const specialIds = tokenizer.specialTokenIds;

  const dir = await mkdtemp(join(tmpdir(), "vllm-ts-model-"));
  const tensorDtype = dtypeOfTorchName(resolved.dtype);
  const weights = new Map<string, Float32Array>();
  const tensorPrefix = resolved.visionTower ? "language_model." : "";
  const specs = [
    ...tensorSpecs({ ...resolved, headDim, tensorPrefix, moe: writtenExperts(resolved) }),
    ...(resolved.visionTower ? [VISION_TOWER_TENSOR] : []),
  ];
  const tensors = specs.map((spec, index): [string, TensorToWrite] => {
    const data = storedValues(spec, index, resolved.seed, tensorDtype);
    weights.set(spec.name, data);
    return [spec.name, { dtype: tensorDtype, shape: spec.shape, data }];
  });
  const generationConfig = {
    bos_token_id: specialIds["<|endoftext|>"],
    eos_token_id: [specialIds["<|im_end|>"], specialIds["<|endoftext|>"]],
    ...resolved.generationConfig,
  };
  await Promise.all([
    Bun.write(join(dir, "config.json"), JSON.stringify(configJson(resolved, specialIds), null, 2)),
    Bun.write(join(dir, "generation_config.json"), JSON.stringify(generationConfig, null, 2)),
    Bun.write(join(dir, "tokenizer.json"), JSON.stringify(tokenizer.tokenizerJson)),
    Bun.write(join(dir, "tokenizer_config.json"), JSON.stringify(tokenizer.tokenizerConfig, null, 2)),
    writeWeights(dir, tensors, resolved.sharded),
  ]);
  return { dir, config: await loadModelConfig(dir), weights };
}
