// A GGUF file's tensors under their Hugging Face names, rows in Hugging Face order (Llama's q/k
// rows put back; a mixture's stacked experts one matrix per expert), for the weight loader. Each tensor is also available raw: its ggml type and its
// row-ordered bytes, which is what a loader of quantized blocks reads.
import type { DType } from "../../backend/dtype.ts";
import { ALL_QUANT_FORMATS, QUANT_FORMATS, type QuantFormat } from "../../backend/weight-format.ts";
import { ModelLoadError } from "../errors.ts";
import type { TensorStore } from "../tensor-store.ts";
import type { GgmlType } from "./ggml-types.ts";
import type { GgufFile } from "./gguf-file.ts";
import {
  type ExpertNaming,
  type GgufSource,
  huggingFaceTensorsOf,
  isUnstackedExpertTensor,
} from "./gguf-tensor-names.ts";
import { unpermuteLlamaQkRows } from "./llama-qk-rows.ts";

export interface GgufStoredTensor {
  /** The tensor's GGUF name, for messages. */
  ggufName: string;
  type: GgmlType;
  /** Outermost dimension first. */
  shape: number[];
  /** Rows in Hugging Face order, each row its type's whole blocks. */
  bytes: Uint8Array;
}

export interface GgufTensorStore extends TensorStore {
  raw(name: string): GgufStoredTensor;
}

/** Head counts of a Llama file, whose q/k rows the converter permuted; null for other architectures. */
export interface PermutedHeads {
  numHeads: number;
  numKvHeads: number;
}

const UNQUANTIZED: Record<string, DType> = { F32: "f32", F16: "f16", BF16: "bf16" };

/** The engine dtype of an unquantized ggml type; null for the quantized ones. */
export function dtypeOfGgmlType(type: GgmlType): DType | null {
  return UNQUANTIZED[type.name] ?? null;
}

/** The engine's quantized format of a ggml type, or null for one it does not load. */
function quantFormatOf(type: GgmlType): QuantFormat | null {
  return ALL_QUANT_FORMATS.find((format) => QUANT_FORMATS[format].ggml === type.name) ?? null;
}

/** The only place a tensor's ggml type becomes an engine format: other types are refused here. */
function asEngineTensor(file: string, tensor: GgufStoredTensor) {
  const format = dtypeOfGgmlType(tensor.type) ?? quantFormatOf(tensor.type);
  if (format === null) {
    const supported = [...Object.keys(UNQUANTIZED), ...ALL_QUANT_FORMATS.map((f) => QUANT_FORMATS[f].ggml)];
    throw new ModelLoadError(
      file,
      `tensor ${tensor.ggufName} is ${tensor.type.name}, which this engine does not load (supported: ${supported.join(", ")})`,
    );
  }
  return { dtype: format, shape: tensor.shape, bytes: tensor.bytes };
}

/** The head count whose rows a tensor's permutation grouped, for Llama's q and k tensors. */
function permutedHeadCount(ggufName: string, heads: PermutedHeads | null): number | null {
  if (heads === null) return null;
  if (/^blk\.\d+\.attn_q\.(weight|bias)$/.test(ggufName)) return heads.numHeads;
  if (/^blk\.\d+\.attn_k\.(weight|bias)$/.test(ggufName)) return heads.numKvHeads;
  return null;
}

/** How the file's tensors are read back: Llama's permuted q/k rows, a mixture's stacked experts. */
export interface GgufLayout {
  permutedHeads: PermutedHeads | null;
  experts: ExpertNaming | null;
}

export function openGgufTensorStore(gguf: GgufFile, layout: GgufLayout): GgufTensorStore {
  const sources = new Map<string, GgufSource>();
  for (const ggufName of gguf.tensors.keys()) {
    if (isUnstackedExpertTensor(ggufName))
      throw new ModelLoadError(
        gguf.file,
        `tensor ${ggufName} holds one expert of a layer: a conversion older than llama.cpp's stacked experts (ffn_*_exps); convert the model again`,
      );
    for (const [name, source] of huggingFaceTensorsOf(ggufName, layout.experts)) sources.set(name, source);
  }

  const raw = (name: string): GgufStoredTensor => {
    const source = sources.get(name);
    if (source === undefined) throw new ModelLoadError(gguf.file, `tensor "${name}" not found in the model's weights`);
    const { ggufName, expert } = source;
    const { type, shape, bytes } = gguf.tensors.get(ggufName)!;
    if (expert !== null) return expertMatrix(gguf.file, { ggufName, type, shape, bytes }, expert);
    // Qwen2-MoE's shared-expert gate is one row, which llama.cpp stores as a vector.
    if (name.endsWith(".shared_expert_gate.weight") && shape.length === 1)
      return { ggufName, type, shape: [1, shape[0]!], bytes };
    const heads = permutedHeadCount(ggufName, layout.permutedHeads);
    if (heads === null) return { ggufName, type, shape, bytes };
    if (shape[0]! % (2 * heads) !== 0) {
      throw new ModelLoadError(gguf.file, `tensor ${ggufName}: ${shape[0]} rows do not split into ${heads} heads`);
    }
    return { ggufName, type, shape, bytes: unpermuteLlamaQkRows(bytes, shape[0]!, heads) };
  };

  return {
    has: (name) => sources.has(name),
    names: () => [...sources.keys()],
    raw,
    tensor: (name) => asEngineTensor(gguf.file, raw(name)),
  };
}

/** One expert's [rows, columns] matrix of a stacked [experts, rows, columns] tensor (whole rows of blocks). */
function expertMatrix(file: string, stacked: GgufStoredTensor, expert: number): GgufStoredTensor {
  const { ggufName, type, shape, bytes } = stacked;
  if (shape.length !== 3)
    throw new ModelLoadError(file, `tensor ${ggufName} has shape [${shape}], not [experts, rows, columns]`);
  const perExpert = bytes.byteLength / shape[0]!;
  return {
    ggufName: `${ggufName} (expert ${expert})`,
    type,
    shape: shape.slice(1),
    bytes: bytes.subarray(expert * perExpert, (expert + 1) * perExpert),
  };
}
