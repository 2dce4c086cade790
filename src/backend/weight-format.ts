// How a weight tensor is stored: one of the element dtypes, or one of llama.cpp's block-quantized
// formats (GGUF's Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K), each with its C ABI code
// (vt_dtype), block shape and GGUF name in one table. cuda/shared/quant.h lays the blocks out; src/reference/quant.ts is
// their TypeScript reference.
import { vt_dtype } from "../../build/vllm-ts-abi.ts";
import { DTYPES, type DType, dtypeBytes } from "./dtype.ts";

export const QUANT_FORMATS = {
  q8_0: { code: vt_dtype.VT_Q8_0, blockElements: 32, blockBytes: 34, ggml: "Q8_0" },
  q4_0: { code: vt_dtype.VT_Q4_0, blockElements: 32, blockBytes: 18, ggml: "Q4_0" },
  q4_1: { code: vt_dtype.VT_Q4_1, blockElements: 32, blockBytes: 20, ggml: "Q4_1" },
  q5_0: { code: vt_dtype.VT_Q5_0, blockElements: 32, blockBytes: 22, ggml: "Q5_0" },
  q5_1: { code: vt_dtype.VT_Q5_1, blockElements: 32, blockBytes: 24, ggml: "Q5_1" },
  q4_k: { code: vt_dtype.VT_Q4_K, blockElements: 256, blockBytes: 144, ggml: "Q4_K" },
  q5_k: { code: vt_dtype.VT_Q5_K, blockElements: 256, blockBytes: 176, ggml: "Q5_K" },
  q6_k: { code: vt_dtype.VT_Q6_K, blockElements: 256, blockBytes: 210, ggml: "Q6_K" },
} as const;

export type QuantFormat = keyof typeof QUANT_FORMATS;
export type WeightFormat = DType | QuantFormat;

export const ALL_QUANT_FORMATS = Object.keys(QUANT_FORMATS) as QuantFormat[];

export function isQuantFormat(format: WeightFormat): format is QuantFormat {
  return format in QUANT_FORMATS;
}

/** The C ABI's vt_dtype code of a format. */
export function formatCode(format: WeightFormat): number {
  return isQuantFormat(format) ? QUANT_FORMATS[format].code : DTYPES[format].code;
}

/** Bytes of `count` elements stored as `format` (whole blocks for a quantized one). */
export function storageBytes(format: WeightFormat, count: number): number {
  if (!isQuantFormat(format)) return count * dtypeBytes(format);
  const { blockElements, blockBytes } = QUANT_FORMATS[format];
  if (count % blockElements !== 0)
    throw new Error(`${count} elements are not whole ${format} blocks of ${blockElements}`);
  return (count / blockElements) * blockBytes;
}
