// Element types shared by the native ABI and the TypeScript side (vt_dtype in vllm_ts.h).
export type DType = "f32" | "f16" | "bf16";

export const dtypeCode: Record<DType, number> = { f32: 0, f16: 1, bf16: 2 };
export const dtypeBytes: Record<DType, number> = { f32: 4, f16: 2, bf16: 2 };
