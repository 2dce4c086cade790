// The element types of tensors, with every name each goes by in one table: the C ABI's vt_dtype
// code (read from cuda/include/vllm_ts.h), its size, its name in a safetensors header and in a
// config.json's torch_dtype, and the other spellings vLLM's --dtype takes. Plus the exact conversions between f32 and the
// 16-bit types (round to nearest even, as vt_convert does), so TS references see the very bits a
// kernel sees.
import { vt_dtype } from "../../build/vllm-ts-abi.ts";

export const DTYPES = {
  f32: { code: vt_dtype.VT_F32, bytes: 4, safetensors: "F32", torch: "float32", aliases: ["float"] },
  f16: { code: vt_dtype.VT_F16, bytes: 2, safetensors: "F16", torch: "float16", aliases: ["half"] },
  bf16: { code: vt_dtype.VT_BF16, bytes: 2, safetensors: "BF16", torch: "bfloat16", aliases: [] },
} as const;

export type DType = keyof typeof DTYPES;
/** The name config.json's torch_dtype and --dtype use: float32, float16, bfloat16. */
export type TorchDtypeName = (typeof DTYPES)[DType]["torch"];

export const ALL_DTYPES = Object.keys(DTYPES) as DType[];
export const TORCH_DTYPE_NAMES = ALL_DTYPES.map((d) => DTYPES[d].torch);

export const dtypeBytes = (dtype: DType): number => DTYPES[dtype].bytes;

/** The dtype a safetensors header names, or undefined for one the engine does not load. */
export function dtypeOfSafetensorsName(name: unknown): DType | undefined {
  return ALL_DTYPES.find((d) => DTYPES[d].safetensors === name);
}

export function dtypeOfTorchName(name: TorchDtypeName): DType {
  return ALL_DTYPES.find((d) => DTYPES[d].torch === name)!;
}

/** Every name vLLM's --dtype takes for a dtype: torch's, then the others (half, float). */
export const DTYPE_FLAG_NAMES = ALL_DTYPES.flatMap((d) => [DTYPES[d].torch, ...DTYPES[d].aliases]);
export type DtypeFlagName = (typeof DTYPE_FLAG_NAMES)[number];

export function dtypeOfFlagName(name: DtypeFlagName): DType {
  return ALL_DTYPES.find((d) => DTYPES[d].torch === name || (DTYPES[d].aliases as readonly string[]).includes(name))!;
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0]!;
}

function f32FromBits(bits: number): number {
  scratchU32[0] = bits;
  return scratchF32[0]!;
}

/** Rounds `shifted` (value >> shift, remainder `rem`) to nearest even. */
function roundHalfEven(shifted: number, rem: number, halfway: number): number {
  return rem > halfway || (rem === halfway && (shifted & 1) === 1) ? shifted + 1 : shifted;
}

export function f32ToF16Bits(x: number): number {
  const bits = f32Bits(x);
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 | (mantissa >>> 13) : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Subnormal f16: value = m * 2^-24, so drop 14 - halfExponent bits of the full significand.
    const shift = 14 - halfExponent;
    if (shift > 24) return sign;
    const significand = mantissa | 0x800000;
    const rem = significand & ((1 << shift) - 1);
    return sign | roundHalfEven(significand >>> shift, rem, 1 << (shift - 1));
  }
  // A carry out of the mantissa bumps the exponent, up to infinity: exactly what RNE wants.
  return sign | roundHalfEven((halfExponent << 10) | (mantissa >>> 13), mantissa & 0x1fff, 0x1000);
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >>> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa !== 0 ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

export function f32ToBf16Bits(x: number): number {
  const bits = f32Bits(x);
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x40;
  return (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

export function bf16BitsToF32(b: number): number {
  return f32FromBits((b & 0xffff) << 16);
}

/** The f32 value `x` becomes once stored as `dtype`. */
export function roundToDtype(x: number, dtype: DType): number {
  switch (dtype) {
    case "f32":
      return Math.fround(x);
    case "f16":
      return f16BitsToF32(f32ToF16Bits(x));
    case "bf16":
      return bf16BitsToF32(f32ToBf16Bits(x));
  }
}

/** Little-endian bytes of `values` stored as `dtype` (the host is little-endian, as is the format). */
export function encodeFromF32(values: Float32Array, dtype: DType): Uint8Array<ArrayBuffer> {
  if (dtype === "f32") return new Uint8Array(values.slice().buffer);
  const toBits = dtype === "f16" ? f32ToF16Bits : f32ToBf16Bits;
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toBits(values[i]!);
  return new Uint8Array(out.buffer);
}

/** f32 values of little-endian `bytes` stored as `dtype`; `bytes` may be unaligned (an mmap view). */
export function decodeToF32(bytes: Uint8Array, dtype: DType): Float32Array {
  const elementBytes = dtypeBytes(dtype);
  const aligned = bytes.byteOffset % elementBytes === 0 ? bytes : bytes.slice();
  const count = aligned.byteLength / elementBytes;
  if (dtype === "f32") return new Float32Array(aligned.buffer, aligned.byteOffset, count).slice();
  const halves = new Uint16Array(aligned.buffer, aligned.byteOffset, count);
  const toF32 = dtype === "f16" ? f16BitsToF32 : bf16BitsToF32;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = toF32(halves[i]!);
  return out;
}
