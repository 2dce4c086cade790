// A Hugging Face config.json read into the few numbers a Llama-family forward needs, validated up
// front so that a bad checkpoint fails at load with the field named, not mid-forward.

import { join } from "node:path";
import { type DType, dtypeOfTorchName, TORCH_DTYPE_NAMES, type TorchDtypeName } from "../backend/dtype.ts";
import { ModelLoadError, readJsonFile } from "./errors.ts";

export type Architecture = "LlamaForCausalLM" | "MistralForCausalLM" | "Qwen2ForCausalLM" | "Qwen3ForCausalLM";

export const SUPPORTED_ARCHITECTURES: readonly Architecture[] = [
  "LlamaForCausalLM",
  "MistralForCausalLM",
  "Qwen2ForCausalLM",
  "Qwen3ForCausalLM",
];

export interface RopeScaling {
  type: "llama3";
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

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
  /** Attention looks back at most this many tokens; null = unlimited. */
  slidingWindow: number | null;
  /** The checkpoint's torch_dtype. */
  dtype: DType;
  bosTokenId: number | null;
  eosTokenIds: number[];
}

type Json = Record<string, unknown>;

/**
 * Field readers bound to one file, so every message names the file and the field; `scope`
 * prefixes fields of a nested object ("rope_scaling.").
 */
function fieldReader(json: Json, file: string, scope = "") {
  const fail = (field: string, expected: string): never => {
    throw new ModelLoadError(file, `"${scope}${field}" must be ${expected}, got ${JSON.stringify(json[field])}`);
  };
  const present = (field: string) => json[field] !== undefined && json[field] !== null;
  const positiveInt = (field: string, fallback?: number): number => {
    if (!present(field)) {
      if (fallback !== undefined) return fallback;
      throw new ModelLoadError(file, `missing required field "${scope}${field}"`);
    }
    const value = json[field];
    return Number.isInteger(value) && (value as number) > 0 ? (value as number) : fail(field, "a positive integer");
  };
  const positiveNumber = (field: string, fallback?: number): number => {
    if (!present(field)) {
      if (fallback !== undefined) return fallback;
      throw new ModelLoadError(file, `missing required field "${scope}${field}"`);
    }
    const value = json[field];
    return typeof value === "number" && value > 0 && Number.isFinite(value) ? value : fail(field, "a positive number");
  };
  const boolean = (field: string, fallback: boolean): boolean => {
    if (!present(field)) return fallback;
    const value = json[field];
    return typeof value === "boolean" ? value : fail(field, "true or false");
  };
  const tokenIds = (field: string): number[] => {
    if (!present(field)) return [];
    const value = json[field];
    const ids = Array.isArray(value) ? value : [value];
    const valid = ids.every((id) => Number.isInteger(id) && id >= 0);
    return valid ? (ids as number[]) : fail(field, "a token id or a list of token ids");
  };
  return { present, positiveInt, positiveNumber, boolean, tokenIds };
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
  if (type !== "llama3") {
    throw new ModelLoadError(
      file,
      `unsupported rope_scaling type ${JSON.stringify(type)} (supported: llama3, default)`,
    );
  }
  const read = fieldReader(fields, file, "rope_scaling.");
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

function parseSlidingWindow(json: Json, file: string, architecture: Architecture, numLayers: number): number | null {
  const read = fieldReader(json, file);
  if (architecture === "LlamaForCausalLM" || !read.present("sliding_window")) return null;
  if (architecture === "MistralForCausalLM") return read.positiveInt("sliding_window");
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
  const fields = json as Json;
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
  return {
    architecture,
    vocabSize: read.positiveInt("vocab_size"),
    hiddenSize,
    intermediateSize: read.positiveInt("intermediate_size"),
    numLayers,
    numHeads,
    numKvHeads,
    headDim: read.positiveInt("head_dim", hiddenSize / numHeads),
    rmsNormEps: read.positiveNumber("rms_norm_eps", 1e-6),
    ropeTheta: read.positiveNumber("rope_theta", 10000),
    ropeScaling: parseRopeScaling(fields, file),
    maxPositionEmbeddings: read.positiveInt("max_position_embeddings", 2048),
    tieWordEmbeddings: read.boolean("tie_word_embeddings", false),
    attentionBias: architecture === "Qwen2ForCausalLM" || read.boolean("attention_bias", false),
    qkNorm: architecture === "Qwen3ForCausalLM",
    slidingWindow: parseSlidingWindow(fields, file, architecture, numLayers),
    dtype: parseDtype(fields, file),
    bosTokenId: read.tokenIds("bos_token_id")[0] ?? null,
    eosTokenIds: read.tokenIds("eos_token_id"),
  };
}

export async function loadModelConfig(modelDir: string): Promise<ModelConfig> {
  const file = join(modelDir, "config.json");
  return parseModelConfig(readJsonFile(file), file);
}

/** Bytes one token occupies in the KV cache across all layers (K and V). */
export function perTokenKvBytes(config: ModelConfig, cacheDtypeBytes: number): number {
  return 2 * config.numLayers * config.numKvHeads * config.headDim * cacheDtypeBytes;
}
