// What the weight loader reads a checkpoint through: tensors by their Hugging Face names, whatever
// the file format (safetensors folders, GGUF files).
import type { WeightFormat } from "../backend/weight-format.ts";

export interface StoredTensor {
  /** An element dtype, or (GGUF) one of the quantized formats: the rows are then whole blocks. */
  dtype: WeightFormat;
  /** Outermost dimension first, as Hugging Face writes shapes. */
  shape: number[];
  /** Little-endian element bytes, rows in order (a view into the mapped file when possible). */
  bytes: Uint8Array;
}

export interface TensorStore {
  has(name: string): boolean;
  names(): string[];
  /** The tensor of that Hugging Face name; a ModelLoadError when absent or of an unloadable type. */
  tensor(name: string): StoredTensor;
}
