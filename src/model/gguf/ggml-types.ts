// ggml's tensor types as GGUF numbers them: each stores its elements in blocks of a fixed count
// and byte size, so any tensor's byte size can be checked, whether or not this build loads it.
// Ids missing from the table were retired by ggml and never appear in a current file.

export interface GgmlType {
  name: string;
  /** The type's number in a GGUF tensor info. */
  id: number;
  /** Elements per block; a row's element count must be a multiple of it. */
  blockSize: number;
  bytesPerBlock: number;
}

const QK = 32;
const QK_K = 256;

export const GGML_TYPES: readonly GgmlType[] = [
  { name: "F32", id: 0, blockSize: 1, bytesPerBlock: 4 },
  { name: "F16", id: 1, blockSize: 1, bytesPerBlock: 2 },
  { name: "Q4_0", id: 2, blockSize: QK, bytesPerBlock: 18 },
  { name: "Q4_1", id: 3, blockSize: QK, bytesPerBlock: 20 },
  { name: "Q5_0", id: 6, blockSize: QK, bytesPerBlock: 22 },
  { name: "Q5_1", id: 7, blockSize: QK, bytesPerBlock: 24 },
  { name: "Q8_0", id: 8, blockSize: QK, bytesPerBlock: 34 },
  { name: "Q8_1", id: 9, blockSize: QK, bytesPerBlock: 36 },
  { name: "Q2_K", id: 10, blockSize: QK_K, bytesPerBlock: 84 },
  { name: "Q3_K", id: 11, blockSize: QK_K, bytesPerBlock: 110 },
  { name: "Q4_K", id: 12, blockSize: QK_K, bytesPerBlock: 144 },
  { name: "Q5_K", id: 13, blockSize: QK_K, bytesPerBlock: 176 },
  { name: "Q6_K", id: 14, blockSize: QK_K, bytesPerBlock: 210 },
  { name: "Q8_K", id: 15, blockSize: QK_K, bytesPerBlock: 292 },
  { name: "IQ2_XXS", id: 16, blockSize: QK_K, bytesPerBlock: 66 },
  { name: "IQ2_XS", id: 17, blockSize: QK_K, bytesPerBlock: 74 },
  { name: "IQ3_XXS", id: 18, blockSize: QK_K, bytesPerBlock: 98 },
  { name: "IQ1_S", id: 19, blockSize: QK_K, bytesPerBlock: 50 },
  { name: "IQ4_NL", id: 20, blockSize: QK, bytesPerBlock: 18 },
  { name: "IQ3_S", id: 21, blockSize: QK_K, bytesPerBlock: 110 },
  { name: "IQ2_S", id: 22, blockSize: QK_K, bytesPerBlock: 82 },
  { name: "IQ4_XS", id: 23, blockSize: QK_K, bytesPerBlock: 136 },
  { name: "I8", id: 24, blockSize: 1, bytesPerBlock: 1 },
  { name: "I16", id: 25, blockSize: 1, bytesPerBlock: 2 },
  { name: "I32", id: 26, blockSize: 1, bytesPerBlock: 4 },
  { name: "I64", id: 27, blockSize: 1, bytesPerBlock: 8 },
  { name: "F64", id: 28, blockSize: 1, bytesPerBlock: 8 },
  { name: "IQ1_M", id: 29, blockSize: QK_K, bytesPerBlock: 56 },
  { name: "BF16", id: 30, blockSize: 1, bytesPerBlock: 2 },
  { name: "TQ1_0", id: 34, blockSize: QK_K, bytesPerBlock: 54 },
  { name: "TQ2_0", id: 35, blockSize: QK_K, bytesPerBlock: 66 },
  { name: "MXFP4", id: 39, blockSize: QK, bytesPerBlock: 17 },
];

const BY_ID = new Map(GGML_TYPES.map((type) => [type.id, type]));
const BY_NAME = new Map(GGML_TYPES.map((type) => [type.name, type]));

export function ggmlTypeOfId(id: number): GgmlType | undefined {
  return BY_ID.get(id);
}

export function ggmlTypeOfName(name: string): GgmlType | undefined {
  return BY_NAME.get(name);
}
