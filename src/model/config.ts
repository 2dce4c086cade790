// A Hugging Face config.json read into the few numbers a Llama-family forward needs, validated up
// front so that a bad checkpoint fails at load with the field named, not mid-forward. What Gemma
// and Phi-3 add is read by gemma-config.ts and phi3-config.ts.

import { join } from "node:path";
import { type DType, dtypeOfTorchName, TORCH_DTYPE_NAMES, type TorchDtypeName } from "../backend/dtype.ts";
import type { RopeFrequencyScaling } from "../backend/ops.ts";
import { fieldReader, type Json } from "./config-fields.ts";
import { ModelLoadError, readJsonFile } from "./errors.ts";
import { gemmaFields } from "./gemma-config.ts";
import { GEMMA3_MULTIMODAL, GEMMA3_TEXT_TENSOR_PREFIX, gemma3TextConfigOf } from "./gemma3-multimodal-config.ts";
import { isMoeArchitecture, type MoeConfig, moeFields } from "./moe-config.ts";
import { phi3Fields } from "./phi3-config.ts";

export type Architecture =
  | "LlamaForCausalLM"
  | "MistralForCausalLM"
  | "Qwen2ForCausalLM"
  | "Qwen3ForCausalLM"
  | "Gemma2ForCausalLM"
  | "Gemma3ForCausalLM"
  | "Phi3ForCausalLM"
  | "Qwen2MoeForCausalLM"
  | "Qwen3MoeForCausalLM"
  | "MixtralForCausalLM";

export const SUPPORTED_ARCHITECTURES: readonly Architecture[] = [
  "LlamaForCausalLM",
  "MistralForCausalLM",
  "Qwen2ForCausalLM",
  "Qwen3ForCausalLM",
  "Gemma2ForCausalLM",
  "Gemma3ForCausalLM",
  "Phi3ForCausalLM",
  "Qwen2MoeForCausalLM",
  "Qwen3MoeForCausalLM",
  "MixtralForCausalLM",
];

export interface Llama3RopeScaling {
  type: "llama3";
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** Position interpolation: every frequency divided by the factor (Gemma 3 4B and up). */
export interface LinearRopeScaling {
  type: "linear";
  factor: number;
}

export type RopeScaling = Llama3RopeScaling | LinearRopeScaling;

/** Hugging Face's names for a layer's attention span. */
export type LayerType = "full_attention" | "sliding_attention";

/** The MLP's gate activation: SiLU (Llama, Qwen, Phi-3) or tanh-approximated GELU (Gemma). */
export type HiddenActivation = "silu" | "gelu_pytorch_tanh";

export interface ModelConfig {
  architecture: Architecture;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** q/k/v projections have biases (Qwen2: always; Llama/Mistral: config.attention_bias). */
  attentionBias: boolean;
  /** Per-head RMSNorm on q and k (Qwen3). */
  qkNorm: boolean;
  /** Sliding layers look back at most this many tokens; null = unlimited. */
  slidingWindow: number | null;
  /** Per layer: whether it attends within slidingWindow or to the whole context. */
  layerTypes: LayerType[];
  /** Dims of each head that RoPE rotates: headDim, or less with Phi-3's partial_rotary_factor. */
  rotaryDim: number;
  /** RoPE theta of the sliding layers when it differs (Gemma 3's rope_local_base_freq); ropeScaling
   * then applies to the full-attention layers only. */
  localRopeTheta: number | null;
  hiddenAct: HiddenActivation;
  /** Multiplies q.k before the softmax: 1/sqrt(headDim), or Gemma's query_pre_attn_scalar^-0.5. */
  attentionScale: number;
  /** Attention scores become cap * tanh(score / cap) (Gemma 2); null = off. */
  attnLogitSoftcapping: number | null;
  /** Logits become cap * tanh(logit / cap) (Gemma 2); null = off. */
  finalLogitSoftcapping: number | null;
  /** Multiplies the embeddings (Gemma: sqrt(hidden_size)); null = none. */
  embeddingScale: number | null;
  /** RMSNorm weights are offsets from 1: x * (1 + w) (Gemma). */
  normWeightsFromOne: boolean;
  /** RMSNorm also on the attention and MLP outputs before their residual adds (Gemma 2 and 3). */
  sandwichNorms: boolean;
  /** Prefix of every tensor name ("language_model." in a Gemma 3 checkpoint with a vision tower). */
  tensorPrefix: string;
  /** The experts of a mixture-of-experts model (Qwen2-MoE, Qwen3-MoE, Mixtral); null for a dense one. */
  moe: MoeConfig | null;
  /** The checkpoint's torch_dtype. */
  dtype: DType;
  bosTokenId: number | null;
  eosTokenIds: number[];
}

/** What a Llama-family model leaves at its plain value, for the fields other families change. */
export function llamaFamilyDefaults(
  numLayers: number,
  headDim: number,
  slidingWindow: number | null,
): Pick<
  ModelConfig,
  | "layerTypes"
  | "rotaryDim"
  | "localRopeTheta"
  | "hiddenAct"
  | "attentionScale"
  | "attnLogitSoftcapping"
  | "finalLogitSoftcapping"
  | "embeddingScale"
  | "normWeightsFromOne"
  | "sandwichNorms"
  | "tensorPrefix"
  | "moe"
> {
  return {
    layerTypes: Array(numLayers).fill(slidingWindow === null ? "full_attention" : "sliding_attention"),
    rotaryDim: headDim,
    localRopeTheta: null,
    hiddenAct: "silu",
    attentionScale: 1 / Math.sqrt(headDim),
    attnLogitSoftcapping: null,
    finalLogitSoftcapping: null,
    embeddingScale: null,
    normWeightsFromOne: false,
    sandwichNorms: false,
    tensorPrefix: "",
    moe: null,
  };
}

/** The window of a layer's attention, 0 for the whole context (vt_paged_attention's convention). */
export function layerSlidingWindow(config: ModelConfig, layer: number): number {
  return config.layerTypes[layer] === "sliding_attention" ? (config.slidingWindow ?? 0) : 0;
}

/** A layer's RoPE: Gemma 3's sliding layers take their own theta and no scaling. */
export function layerRope(config: ModelConfig, layer: number): { theta: number; scaling: RopeFrequencyScaling | null } {
  if (config.localRopeTheta !== null && config.layerTypes[layer] === "sliding_attention")
    return { theta: config.localRopeTheta, scaling: null };
  const s = config.ropeScaling;
  const scaling: RopeFrequencyScaling | null =
    s?.type === "llama3"
      ? {
          type: "llama3",
          factor: s.factor,
          lowFreqFactor: s.lowFreqFactor,
          highFreqFactor: s.highFreqFactor,
          originalMaxPosition: s.originalMaxPositionEmbeddings,
        }
      : s;
  return { theta: config.ropeTheta, scaling };
}

function parseArchitecture(json: Json, file: string): Architecture {
  const architectures = json.architectures;
  const supported = SUPPORTED_ARCHITECTURES.join(", ");
  if (!Array.isArray(architectures) || architectures.length === 0) {
    throw new ModelLoadError(file, `missing "architectures" (supported: ${supported})`);
  }
  const found = architectures.find((name): name is Architecture => SUPPORTED_ARCHITECTURES.includes(name));
  if (found === undefined) {
    throw new ModelLoadError(file, `unsupported architecture ${architectures.join(", ")} (supported: ${supported})`);
  }
  return found;
}

function parseRopeScaling(json: Json, file: string): RopeScaling | null {
  const scaling = json.rope_scaling;
  if (scaling === undefined || scaling === null) return null;
  if (typeof scaling !== "object" || Array.isArray(scaling)) {
    throw new ModelLoadError(file, `"rope_scaling" must be an object or null`);
  }
  const fields = scaling as Json;
  // Newer configs say "rope_type", older ones "type".
  const type = fields.rope_type ?? fields.type;
  if (type === "default" || type === undefined) return null;
  const read = fieldReader(fields, file, "rope_scaling.");
  if (type === "linear") return { type: "linear", factor: read.positiveNumber("factor") };
  if (type === "longrope" || type === "su") {
    throw new ModelLoadError(
      file,
      `rope_scaling type ${JSON.stringify(type)} (the long-context RoPE of Phi-3's 128k checkpoints) is not implemented`,
    );
  }
  if (type !== "llama3") {
    throw new ModelLoadError(
      file,
      `unsupported rope_scaling type ${JSON.stringify(type)} (supported: llama3, linear, default)`,
    );
  }
  const lowFreqFactor = read.positiveNumber("low_freq_factor");
  const highFreqFactor = read.positiveNumber("high_freq_factor");
  if (highFreqFactor <= lowFreqFactor) {
    throw new ModelLoadError(file, `"rope_scaling.high_freq_factor" must exceed "rope_scaling.low_freq_factor"`);
  }
  return {
    type: "llama3",
    factor: read.positiveNumber("factor"),
    lowFreqFactor,
    highFreqFactor,
    originalMaxPositionEmbeddings: read.positiveInt("original_max_position_embeddings"),
  };
}

function parseDtype(json: Json, file: string): DType {
  const value = json.torch_dtype ?? json.dtype ?? "bfloat16";
  if (!TORCH_DTYPE_NAMES.includes(value as TorchDtypeName)) {
    throw new ModelLoadError(
      file,
      `unsupported torch_dtype ${JSON.stringify(value)} (supported: ${TORCH_DTYPE_NAMES.join(", ")})`,
    );
  }
  return dtypeOfTorchName(value as TorchDtypeName);
}

/** The window of a model whose layers all slide or none does (Gemma's mix: gemma-config.ts). */
function parseSlidingWindow(json: Json, file: string, architecture: Architecture, numLayers: number): number | null {
  const read = fieldReader(json, file);
  if (architecture === "LlamaForCausalLM" || !read.present("sliding_window")) return null;
  if (
    architecture === "MistralForCausalLM" ||
    architecture === "MixtralForCausalLM" ||
    architecture === "Phi3ForCausalLM"
  )
    return read.positiveInt("sliding_window");
  // Qwen2/3 configs carry a sliding_window even when it is switched off, and when it is on, only
  // layers from max_window_layers up slide (as in transformers); one window for all layers or
  // none is what the engine supports.
  if (!read.boolean("use_sliding_window", false)) return null;
  const firstSlidingLayer = json.max_window_layers === 0 ? 0 : read.positiveInt("max_window_layers", 28);
  if (firstSlidingLayer >= numLayers) return null;
  if (firstSlidingLayer > 0) {
    throw new ModelLoadError(
      file,
      `sliding window on only some layers ("max_window_layers" ${firstSlidingLayer} of ${numLayers}) is not supported`,
    );
  }
  return read.positiveInt("sliding_window");
}

export function parseModelConfig(json: unknown, file: string): ModelConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ModelLoadError(file, "expected a JSON object");
  }
  const raw = json as Json;
  // A Gemma 3 checkpoint with a vision tower is read as its language model.
  const multimodal = Array.isArray(raw.architectures) && raw.architectures.includes(GEMMA3_MULTIMODAL);
  const fields = multimodal ? gemma3TextConfigOf(raw, file) : raw;
  const read = fieldReader(fields, file);
  const architecture = parseArchitecture(fields, file);
  const hiddenSize = read.positiveInt("hidden_size");
  const numHeads = read.positiveInt("num_attention_heads");
  const numKvHeads = read.positiveInt("num_key_value_heads", numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ModelLoadError(
      file,
      `"num_attention_heads" (${numHeads}) must be a multiple of "num_key_value_heads" (${numKvHeads})`,
    );
  }
  if (!read.present("head_dim") && hiddenSize % numHeads !== 0) {
    throw new ModelLoadError(
      file,
      `"hidden_size" (${hiddenSize}) must be divisible by "num_attention_heads" (${numHeads}) when "head_dim" is absent`,
    );
  }
  const numLayers = read.positiveInt("num_hidden_layers");
  const headDim = read.positiveInt("head_dim", hiddenSize / numHeads);
  const isGemma = architecture === "Gemma2ForCausalLM" || architecture === "Gemma3ForCausalLM";
  // Gemma's windows are per layer (gemma-config.ts); the others slide on all layers or none.
  const slidingWindow = isGemma ? null : parseSlidingWindow(fields, file, architecture, numLayers);
  const config: ModelConfig = {
    architecture,
    vocabSize: read.positiveInt("vocab_size"),
    hiddenSize,
    intermediateSize: read.positiveInt("intermediate_size"),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: read.positiveNumber("rms_norm_eps", 1e-6),
    ropeTheta: read.positiveNumber("rope_theta", 10000),
    ropeScaling: parseRopeScaling(fields, file),
    maxPositionEmbeddings: read.positiveInt("max_position_embeddings", 2048),
    // Gemma's tie the LM head to the embedding unless told otherwise, as its transformers config.
    tieWordEmbeddings: read.boolean("tie_word_embeddings", isGemma),
    // Qwen2's q/k/v always have a bias; Qwen2-MoE's unless its config says otherwise.
    attentionBias:
      architecture === "Qwen2ForCausalLM" ||
      (architecture === "Qwen2MoeForCausalLM" ? read.boolean("qkv_bias", true) : read.boolean("attention_bias", false)),
    qkNorm: architecture === "Qwen3ForCausalLM" || architecture === "Qwen3MoeForCausalLM",
    slidingWindow,
    ...llamaFamilyDefaults(numLayers, headDim, slidingWindow),
    tensorPrefix: multimodal ? GEMMA3_TEXT_TENSOR_PREFIX : "",
    dtype: parseDtype(fields, file),
    bosTokenId: read.tokenIds("bos_token_id")[0] ?? null,
    eosTokenIds: read.tokenIds("eos_token_id"),
  };
  if (isGemma) return { ...config, ...gemmaFields(fields, file, config) };
  const activation = read.string("hidden_act", "silu");
  if (activation !== "silu") {
    throw new ModelLoadError(
      file,
      `unsupported "hidden_act" ${JSON.stringify(activation)} for ${architecture} (supported: silu)`,
    );
  }
  if (architecture === "Phi3ForCausalLM") return { ...config, ...phi3Fields(fields, file, config) };
  if (isMoeArchitecture(architecture)) return { ...config, moe: moeFields(fields, file, config) };
  return config;
}

export async function loadModelConfig(modelDir: string): Promise<ModelConfig> {
  const file = join(modelDir, "config.json");
  return parseModelConfig(readJsonFile(file), file);
}

/** Bytes one token occupies in the KV cache across all layers (K and V). */
export function perTokenKvBytes(config: ModelConfig, cacheDtypeBytes: number): number {
  return 2 * config.numLayers * config.numKvHeads * config.headDim * cacheDtypeBytes;
}
