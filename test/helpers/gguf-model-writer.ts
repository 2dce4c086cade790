// Writes a random Hugging Face model (random-model.ts) as llama.cpp's converter would write it in
// GGUF: llama.cpp's tensor names, 1-D tensors in F32 and matrices in the chosen float type, the
// q/k rows of Llama models permuted for llama.cpp's RoPE, hyper-parameters as <arch>.* metadata and
// the model's tokenizer as tokenizer.ggml.*.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { encodeFromF32 } from "../../src/backend/dtype.ts";
import type { Architecture } from "../../src/model/config.ts";
import { expectedShapes } from "../../src/model/weight-names.ts";
import { byteLevelTokenizerMetadata } from "./gguf-tokenizer-metadata.ts";
import { f32, type GgufEntry, type GgufTensorToWrite, ggufBytes, str, u32 } from "./gguf-writer.ts";
import type { RandomModel } from "./random-model.ts";

export type GgufFloatType = "F32" | "F16" | "BF16";

const FLOAT_TYPES: Record<GgufFloatType, { id: number; dtype: "f32" | "f16" | "bf16"; fileType: number }> = {
  F32: { id: 0, dtype: "f32", fileType: 0 },
  F16: { id: 1, dtype: "f16", fileType: 1 },
  BF16: { id: 30, dtype: "bf16", fileType: 32 },
};

/** The architectures vllm-ts reads from GGUF files (Gemma and Phi-3 it reads as safetensors only). */
const GGUF_ARCH: Partial<Record<Architecture, string>> = {
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "llama",
  MixtralForCausalLM: "llama",
  Qwen2ForCausalLM: "qwen2",
  Qwen3ForCausalLM: "qwen3",
  Qwen2MoeForCausalLM: "qwen2moe",
  Qwen3MoeForCausalLM: "qwen3moe",
};

const LAYER_PARTS: [string, string][] = [
  ["input_layernorm.weight", "attn_norm.weight"],
  ["self_attn.q_proj.weight", "attn_q.weight"],
  ["self_attn.k_proj.weight", "attn_k.weight"],
  ["self_attn.v_proj.weight", "attn_v.weight"],
  ["self_attn.q_proj.bias", "attn_q.bias"],
  ["self_attn.k_proj.bias", "attn_k.bias"],
  ["self_attn.v_proj.bias", "attn_v.bias"],
  ["self_attn.q_norm.weight", "attn_q_norm.weight"],
  ["self_attn.k_norm.weight", "attn_k_norm.weight"],
  ["self_attn.o_proj.weight", "attn_output.weight"],
  ["post_attention_layernorm.weight", "ffn_norm.weight"],
  ["mlp.gate_proj.weight", "ffn_gate.weight"],
  ["mlp.up_proj.weight", "ffn_up.weight"],
  ["mlp.down_proj.weight", "ffn_down.weight"],
  ["mlp.gate.weight", "ffn_gate_inp.weight"],
  ["block_sparse_moe.gate.weight", "ffn_gate_inp.weight"],
  ["mlp.shared_expert.gate_proj.weight", "ffn_gate_shexp.weight"],
  ["mlp.shared_expert.up_proj.weight", "ffn_up_shexp.weight"],
  ["mlp.shared_expert.down_proj.weight", "ffn_down_shexp.weight"],
  ["mlp.shared_expert_gate.weight", "ffn_gate_inp_shexp.weight"],
];

/** An expert's matrix: its layer, its projection in llama.cpp's terms, its index. */
const EXPERT = /^model\.layers\.(\d+)\.(?:mlp|block_sparse_moe)\.experts\.(\d+)\.(\w+)\.weight$/;
const EXPERT_PROJECTIONS: Record<string, string> = {
  gate_proj: "gate",
  up_proj: "up",
  down_proj: "down",
  w1: "gate",
  w3: "up",
  w2: "down",
};

export function llamaCppName(name: string): string {
  if (name === "model.embed_tokens.weight") return "token_embd.weight";
  if (name === "model.norm.weight") return "output_norm.weight";
  if (name === "lm_head.weight") return "output.weight";
  const expert = EXPERT.exec(name);
  if (expert) return `blk.${expert[1]}.ffn_${EXPERT_PROJECTIONS[expert[3]!]}_exps.weight`;
  const match = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
  const part = LAYER_PARTS.find(([hf]) => hf === match?.[2]);
  if (!match || !part) throw new Error(`no llama.cpp name for ${name}`);
  return `blk.${match[1]}.${part[1]}`;
}

/** The converter's permute(): rows of each head reshaped (2, D/2) and transposed to (D/2, 2). */
export function permuteLlamaRows(values: Float32Array, rows: number, heads: number): Float32Array {
  const rowLength = values.length / rows;
  const headDim = rows / heads;
  const out = new Float32Array(values.length);
  for (let head = 0; head < heads; head++) {
    for (let half = 0; half < 2; half++) {
      for (let j = 0; j < headDim / 2; j++) {
        const from = head * headDim + half * (headDim / 2) + j;
        const to = head * headDim + j * 2 + half;
        out.set(values.subarray(from * rowLength, (from + 1) * rowLength), to * rowLength);
      }
    }
  }
  return out;
}

/** A matrix stored quantized: its GGUF type id and its blocks, from the rows as the file orders them. */
export type GgufQuantizer = (name: string, rows: Float32Array) => { typeId: number; data: Uint8Array } | null;

export interface GgufModelOptions {
  type: GgufFloatType;
  /** Matrices to store quantized (by Hugging Face name); the others take `type`. */
  quantize?: GgufQuantizer;
  /** Where to write; default: model.gguf in the model's folder. */
  file?: string;
  /** Extra or replaced metadata. */
  metadata?: Record<string, GgufEntry>;
}

export function ggufModelMetadata(model: RandomModel): Record<string, GgufEntry> {
  const { config } = model;
  const arch = GGUF_ARCH[config.architecture];
  if (arch === undefined) throw new Error(`no GGUF architecture for ${config.architecture}`);
  const tokenizerJson = JSON.parse(readFileSync(join(model.dir, "tokenizer.json"), "utf8"));
  const tokenizerConfig = JSON.parse(readFileSync(join(model.dir, "tokenizer_config.json"), "utf8"));
  const pre = tokenizerJson.pre_tokenizer?.type === "ByteLevel" ? "gpt-2" : arch === "llama" ? "llama-bpe" : "qwen2";
  return {
    "general.architecture": str(arch),
    "general.name": str("random test model"),
    [`${arch}.context_length`]: u32(config.maxPositionEmbeddings),
    [`${arch}.embedding_length`]: u32(config.hiddenSize),
    [`${arch}.feed_forward_length`]: u32(config.intermediateSize),
    [`${arch}.block_count`]: u32(config.numLayers),
    [`${arch}.attention.head_count`]: u32(config.numHeads),
    [`${arch}.attention.head_count_kv`]: u32(config.numKvHeads),
    [`${arch}.attention.key_length`]: u32(config.headDim),
    [`${arch}.attention.value_length`]: u32(config.headDim),
    [`${arch}.attention.layer_norm_rms_epsilon`]: f32(config.rmsNormEps),
    [`${arch}.rope.freq_base`]: f32(config.ropeTheta),
    ...(config.moe && {
      [`${arch}.expert_count`]: u32(config.moe.numExperts),
      [`${arch}.expert_used_count`]: u32(config.moe.topK),
      ...(arch !== "llama" && { [`${arch}.expert_feed_forward_length`]: u32(config.moe.expertIntermediateSize) }),
      ...(config.moe.sharedExpertIntermediateSize !== null && {
        [`${arch}.expert_shared_feed_forward_length`]: u32(config.moe.sharedExpertIntermediateSize),
      }),
    }),
    ...byteLevelTokenizerMetadata(tokenizerJson, tokenizerConfig, {
      pre,
      vocabSize: config.vocabSize,
      ...(config.bosTokenId === null ? {} : { bosTokenId: config.bosTokenId }),
    }),
  };
}

/**
 * Llama 3.1's rope_scaling as llama.cpp's converter stores it: a divisor per frequency (the factor
 * for long wavelengths, 1 for short ones, a blend between).
 */
export function ropeFreqsTensor(config: RandomModel["config"]): GgufTensorToWrite {
  const scaling = config.ropeScaling;
  if (scaling?.type !== "llama3") throw new Error("ropeFreqsTensor: the config has no llama3 rope_scaling");
  const original = scaling.originalMaxPositionEmbeddings;
  const lowWavelength = original / scaling.lowFreqFactor;
  const highWavelength = original / scaling.highFreqFactor;
  const divisors = new Float32Array(config.headDim / 2);
  for (let i = 0; i < divisors.length; i++) {
    const wavelength = (2 * Math.PI) / config.ropeTheta ** ((-2 * i) / config.headDim);
    if (wavelength < highWavelength) divisors[i] = 1;
    else if (wavelength > lowWavelength) divisors[i] = scaling.factor;
    else {
      const smooth = (original / wavelength - scaling.lowFreqFactor) / (scaling.highFreqFactor - scaling.lowFreqFactor);
      divisors[i] = 1 / ((1 - smooth) / scaling.factor + smooth);
    }
  }
  return {
    name: "rope_freqs.weight",
    typeId: FLOAT_TYPES.F32.id,
    shape: [divisors.length],
    data: new Uint8Array(divisors.buffer),
  };
}

export function ggufModelTensors(
  model: RandomModel,
  type: GgufFloatType,
  quantize: GgufQuantizer = () => null,
): GgufTensorToWrite[] {
  const { config } = model;
  const float = FLOAT_TYPES[type];
  const permuted = GGUF_ARCH[config.architecture] === "llama";
  const shapes = expectedShapes(config);
  const extra = config.ropeScaling ? [ropeFreqsTensor(config)] : [];
  const tensors: GgufTensorToWrite[] = [];
  // The experts of one layer's projection, stacked in expert order: [experts, rows, columns].
  const stacks = new Map<string, { first: string; matrices: Float32Array[]; shape: number[] }>();
  for (const [name, values] of model.weights) {
    const shape = shapes.get(name)!;
    // The converter keeps 1-D tensors (norms, biases) in F32 whatever the file's type, and stores
    // the shared expert's one-row gate as a vector.
    const rows = shape.length === 2 && !name.endsWith("shared_expert_gate.weight") ? shape[0]! : null;
    const heads = /q_proj\.(weight|bias)$/.test(name)
      ? config.numHeads
      : /k_proj\.(weight|bias)$/.test(name)
        ? config.numKvHeads
        : null;
    const data = permuted && heads !== null ? permuteLlamaRows(values, rows ?? values.length, heads) : values;
    const ggufName = llamaCppName(name);
    if (EXPERT.test(name)) {
      const stack = stacks.get(ggufName) ?? { first: name, matrices: [], shape };
      stack.matrices[Number(EXPERT.exec(name)![2])] = data;
      stacks.set(ggufName, stack);
      continue;
    }
    tensors.push(ggufTensor(ggufName, name, data, rows === null ? [values.length] : shape, float, quantize));
  }
  for (const [ggufName, { first, matrices, shape }] of stacks) {
    const stacked = new Float32Array(matrices.reduce((sum, m) => sum + m.length, 0));
    matrices.forEach((matrix, e) => {
      stacked.set(matrix, e * matrix.length);
    });
    tensors.push(ggufTensor(ggufName, first, stacked, [matrices.length, ...shape], float, quantize));
  }
  return [...extra, ...tensors];
}

/** One tensor as the file stores it: quantized if asked, else a matrix in `float`, a vector in F32. */
function ggufTensor(
  ggufName: string,
  name: string,
  data: Float32Array,
  shape: number[],
  float: (typeof FLOAT_TYPES)[GgufFloatType],
  quantize: GgufQuantizer,
): GgufTensorToWrite {
  const stored = shape.length === 1 ? FLOAT_TYPES.F32 : float;
  const quantized = shape.length === 1 ? null : quantize(name, data);
  if (quantized) return { name: ggufName, shape, ...quantized };
  return { name: ggufName, typeId: stored.id, shape, data: encodeFromF32(data, stored.dtype) };
}

/** Writes the model as one GGUF file; returns its path. */
export async function writeGgufModel(model: RandomModel, options: GgufModelOptions): Promise<string> {
  const file = options.file ?? join(model.dir, "model.gguf");
  const metadata = {
    ...ggufModelMetadata(model),
    "general.file_type": u32(FLOAT_TYPES[options.type].fileType),
    ...options.metadata,
  };
  await Bun.write(file, ggufBytes(metadata, ggufModelTensors(model, options.type, options.quantize)));
  return file;
}
