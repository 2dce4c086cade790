// Weight dtypes as safetensors names them, and exact conversions between them and f32
// (round to nearest even, as vt_convert does), so TS references see the very bits a kernel sees.

import type { WeightDtype } from "./config.ts";

export type TensorDtype = "F32" | "F16" | "BF16";

export const TENSOR_DTYPES: readonly TensorDtype[] = ["F32", "F16", "BF16"];

export const BYTES_PER_ELEMENT: Record<TensorDtype, number> = { F32: 4, F16: 2, BF16: 2 };

export const TENSOR_DTYPE_OF: Record<WeightDtype, TensorDtype> = {
  float32: "F32",
  float16: "F16",
  bfloat16: "BF16",
};

export function isTensorDtype(value: unknown): value is TensorDtype {
  return TENSOR_DTYPES.includes(value as TensorDtype);
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
export function roundToDtype(x: number, dtype: TensorDtype): number {
  switch (dtype) {
    case "F32":
      return Math.fround(x);
    case "F16":
      return f16BitsToF32(f32ToF16Bits(x));
    case "BF16":
      return bf16BitsToF32(f32ToBf16Bits(x));
  }
}

/** Little-endian bytes of `values` stored as `dtype` (the host is little-endian, as is the format). */
export function encodeFromF32(values: Float32Array, dtype: TensorDtype): Uint8Array<ArrayBuffer> {
  if (dtype === "F32") return new Uint8Array(values.slice().buffer);
  const toBits = dtype === "F16" ? f32ToF16Bits : f32ToBf16Bits;
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toBits(values[i]!);
  return new Uint8Array(out.buffer);
}

/** f32 values of little-endian `bytes` stored as `dtype`; `bytes` may be unaligned (an mmap view). */
export function decodeToF32(bytes: Uint8Array, dtype: TensorDtype): Float32Array {
  const elementBytes = BYTES_PER_ELEMENT[dtype];
  const aligned = bytes.byteOffset % elementBytes === 0 ? bytes : bytes.slice();
  const count = aligned.byteLength / elementBytes;
  if (dtype === "F32") return new Float32Array(aligned.buffer, aligned.byteOffset, count).slice();
  const halves = new Uint16Array(aligned.buffer, aligned.byteOffset, count);
  const toF32 = dtype === "F16" ? f16BitsToF32 : bf16BitsToF32;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = toF32(halves[i]!);
  return out;
}
