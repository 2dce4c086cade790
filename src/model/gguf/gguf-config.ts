// A GGUF file's general.* and <arch>.* metadata read into the ModelConfig a Hugging Face
// config.json gives, with what GGUF leaves implicit taken from the tensors present: a missing
// output.weight ties the LM head to the embedding, q biases mean attention biases, q/k norms
// mean Qwen3's per-head norms.
import type { DType } from "../../backend/dtype.ts";
import { type Architecture, llamaFamilyDefaults, type ModelConfig, type RopeScaling } from "../config.ts";
import type { GgufFile } from "./gguf-file.ts";
import { GgufMetadata } from "./gguf-metadata.ts";
import { ggufMoeConfig } from "./gguf-moe-config.ts";
import { dtypeOfGgmlType } from "./gguf-tensor-store.ts";
import { llama3ScalingOf } from "./rope-freqs.ts";

/**
 * GGUF architecture names and the model classes they are; Mistral files say "llama", and so do
 * Mixtral's, whose experts make them MixtralForCausalLM.
 */
export const GGUF_ARCHITECTURES: Record<string, Architecture> = {
  llama: "LlamaForCausalLM",
  qwen2: "Qwen2ForCausalLM",
  qwen3: "Qwen3ForCausalLM",
  qwen2moe: "Qwen2MoeForCausalLM",
  qwen3moe: "Qwen3MoeForCausalLM",
};

export function ggufArchitecture(metadata: GgufMetadata): string {
  const architecture = metadata.string("general.architecture");
  if (!(architecture in GGUF_ARCHITECTURES)) {
    metadata.fail(
      "general.architecture",
      `is ${JSON.stringify(architecture)}, which is not supported (supported: ${Object.keys(GGUF_ARCHITECTURES).join(", ")})`,
    );
  }
  return architecture;
}

/**
 * Plain RoPE, or Llama 3.1's scaling (a rope_freqs tensor: see rope-freqs.ts); llama.cpp's
 * linear, YaRN and LongRoPE scalings have no kernel here.
 */
function ropeScaling(
  gguf: GgufFile,
  metadata: GgufMetadata,
  arch: string,
  headDim: number,
  theta: number,
): RopeScaling | null {
  const key = `${arch}.rope.scaling.type`;
  const type = metadata.optionalString(key) ?? "none";
  if (type !== "none") metadata.fail(key, `is ${JSON.stringify(type)}; only unscaled RoPE ("none") is supported`);
  const freqs = gguf.tensors.get("rope_freqs.weight");
  if (!freqs) return null;
  const stored = freqs.type.name === "F32" ? new Float32Array(freqs.bytes.slice().buffer) : null;
  const scaling: RopeScaling | null = stored && llama3ScalingOf(stored, headDim, theta);
  if (!scaling) {
    metadata.fail(
      key,
      "is absent and the file's rope_freqs.weight (per-frequency RoPE divisors) is not Llama 3.1's scaling with any factors its checkpoints use: not supported",
    );
  }
  return scaling;
}

/**
 * The dtype of the weights: the unquantized type most matrices have. A quantized file's matrices
 * have none; its few unquantized tensors are norms (always F32), so the conventional F16 stands.
 */
function weightsDtype(gguf: GgufFile): DType {
  const counts = new Map<DType, number>();
  for (const tensor of gguf.tensors.values()) {
    const dtype = dtypeOfGgmlType(tensor.type);
    if (tensor.shape.length >= 2 && dtype !== null) counts.set(dtype, (counts.get(dtype) ?? 0) + 1);
  }
  const ranked = [...counts].sort((a, b) => b[1] - a[1]);
  return ranked[0]?.[0] ?? "f16";
}

function eosTokenIds(metadata: GgufMetadata): number[] {
  const ids = ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"]
    .map((key) => metadata.optionalInteger(key))
    .filter((id): id is number => id !== undefined);
  return [...new Set(ids)];
}

export function ggufModelConfig(gguf: GgufFile): ModelConfig {
  const metadata = new GgufMetadata(gguf);
  const arch = ggufArchitecture(metadata);
  const key = (name: string) => `${arch}.${name}`;
  const hiddenSize = metadata.positiveInteger(key("embedding_length"));
  const numHeads = metadata.positiveInteger(key("attention.head_count"));
  const numKvHeads = metadata.positiveInteger(key("attention.head_count_kv"), numHeads);
  if (numHeads % numKvHeads !== 0) {
    metadata.fail(key("attention.head_count_kv"), `(${numKvHeads}) must divide the head count (${numHeads})`);
  }
  if (!metadata.has(key("attention.key_length")) && hiddenSize % numHeads !== 0) {
    metadata.fail(
      key("attention.key_length"),
      `is absent and the embedding length ${hiddenSize} is not a multiple of the head count ${numHeads}`,
    );
  }
  const headDim = metadata.positiveInteger(key("attention.key_length"), hiddenSize / numHeads);
  if (metadata.positiveInteger(key("attention.value_length"), headDim) !== headDim) {
    metadata.fail(key("attention.value_length"), `must equal the key length ${headDim}`);
  }
  const vocabSize = metadata.stringArray("tokenizer.ggml.tokens").length;
  const ropeTheta = metadata.positiveNumber(key("rope.freq_base"), 10000);
  const bosTokenId = metadata.optionalInteger("tokenizer.ggml.bos_token_id") ?? null;
  const numLayers = metadata.positiveInteger(key("block_count"));
  const intermediateSize = metadata.positiveInteger(key("feed_forward_length"));
  const moe = ggufMoeConfig(metadata, arch, numLayers, intermediateSize);
  return {
    architecture: arch === "llama" && moe !== null ? "MixtralForCausalLM" : GGUF_ARCHITECTURES[arch]!,
    vocabSize,
    hiddenSize,
    intermediateSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: metadata.positiveNumber(key("attention.layer_norm_rms_epsilon")),
    ropeTheta,
    ropeScaling: ropeScaling(gguf, metadata, arch, headDim, ropeTheta),
    maxPositionEmbeddings: metadata.positiveInteger(key("context_length")),
    tieWordEmbeddings: !gguf.tensors.has("output.weight"),
    attentionBias: gguf.tensors.has("blk.0.attn_q.bias"),
    qkNorm: gguf.tensors.has("blk.0.attn_q_norm.weight"),
    slidingWindow: null,
    ...llamaFamilyDefaults(numLayers, headDim, null),
    moe,
    dtype: weightsDtype(gguf),
    bosTokenId,
    eosTokenIds: eosTokenIds(metadata),
  };
}
