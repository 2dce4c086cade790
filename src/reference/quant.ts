// The plain reference of the quantized weight formats (llama.cpp's block layouts, as
// cuda/shared/quant.h lays them out): each block's dequantizer and this project's quantizer,
// in f32 arithmetic rounded step by step as the native code rounds, so the kernels can be held
// to the very bits. Tests also check the dequantizers against llama.cpp's own where available.
import { f16BitsToF32, f32ToF16Bits } from "../backend/dtype.ts";
import { QUANT_FORMATS, type QuantFormat } from "../backend/weight-format.ts";

const f = Math.fround;

/** Nearest integer, ties to even (rintf in the default rounding mode). */
function nearest(v: number): number {
  const floor = Math.floor(v);
  const diff = v - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

function readHalf(b: Uint8Array, at: number): number {
  return f16BitsToF32(b[at]! | (b[at + 1]! << 8));
}

function writeHalf(b: Uint8Array, at: number, value: number): void {
  const bits = f32ToF16Bits(value);
  b[at] = bits & 0xff;
  b[at + 1] = bits >>> 8;
}

const int8 = (byte: number) => (byte << 24) >> 24;

function maxAbs(x: Float32Array, from: number, count: number): number {
  let m = 0;
  for (let i = from; i < from + count; i++) m = Math.max(m, Math.abs(x[i]!));
  return m;
}

/** The (scale, min) pair j of a K-quant's 12 packed bytes at `at`. */
function kScaleMin(b: Uint8Array, at: number, j: number): [number, number] {
  const s = (i: number) => b[at + i]!;
  if (j < 4) return [s(j) & 63, s(j + 4) & 63];
  return [(s(j + 4) & 0xf) | ((s(j - 4) >> 6) << 4), (s(j + 4) >> 4) | ((s(j) >> 6) << 4)];
}

function packScaleMins(scales: number[], mins: number[], b: Uint8Array, at: number): void {
  b.fill(0, at, at + 12);
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      b[at + j] = scales[j]!;
      b[at + j + 4] = mins[j]!;
    } else {
      b[at + j + 4] = (scales[j]! & 0xf) | ((mins[j]! & 0xf) << 4);
      b[at + j - 4]! |= (scales[j]! >> 4) << 6;
      b[at + j]! |= (mins[j]! >> 4) << 6;
    }
  }
}

// ---- dequantizers ------------------------------------------------------------------------------

function dequantizeQ8_0(b: Uint8Array, y: Float32Array): void {
  const d = readHalf(b, 0);
  for (let i = 0; i < 32; i++) y[i] = f(d * int8(b[2 + i]!));
}

function dequantizeQ4_0(b: Uint8Array, y: Float32Array): void {
  const d = readHalf(b, 0);
  for (let i = 0; i < 16; i++) {
    y[i] = f(d * ((b[2 + i]! & 0xf) - 8));
    y[i + 16] = f(d * ((b[2 + i]! >> 4) - 8));
  }
}

/** Q4_1, Q5_0, Q5_1: where the quants start, and where Q5's 32 fifth bits are. */
const Q451 = {
  q4_1: { qs: 4, high: null },
  q5_0: { qs: 6, high: 2 },
  q5_1: { qs: 8, high: 4 },
} as const;
type Q451Format = keyof typeof Q451;

function dequantizeQ451(format: Q451Format, b: Uint8Array, y: Float32Array): void {
  const { qs, high } = Q451[format];
  const d = readHalf(b, 0);
  for (let e = 0; e < 32; e++) {
    let q = e < 16 ? b[qs + e]! & 0xf : b[qs + e - 16]! >> 4;
    if (high !== null) q |= ((b[high + (e >> 3)]! >> (e & 7)) & 1) << 4;
    y[e] = format === "q5_0" ? f(d * (q - 16)) : f(f(d * q) + readHalf(b, 2));
  }
}

function dequantizeQ45K(b: Uint8Array, y: Float32Array, five: boolean): void {
  const d = readHalf(b, 0);
  const dmin = readHalf(b, 2);
  const qs = five ? 48 : 16;
  for (let j = 0; j < 8; j++) {
    const [scale, min] = kScaleMin(b, 4, j);
    const ds = f(d * scale);
    const dm = f(dmin * min);
    for (let l = 0; l < 32; l++) {
      let v = (b[qs + 32 * (j >> 1) + l]! >> ((j & 1) * 4)) & 0xf;
      if (five) v |= ((b[16 + l]! >> j) & 1) << 4;
      y[32 * j + l] = f(f(ds * v) - dm);
    }
  }
}

function dequantizeQ6K(b: Uint8Array, y: Float32Array): void {
  const d = readHalf(b, 208);
  for (let i = 0; i < 256; i++) {
    const h = i >> 7;
    const g = (i & 127) >> 5;
    const l = i & 31;
    const low = (b[64 * h + l + 32 * (g & 1)]! >> (4 * (g >> 1))) & 0xf;
    const high = (b[128 + 32 * h + l]! >> (2 * g)) & 3;
    const scale = int8(b[192 + 8 * h + (l >> 4) + 2 * g]!);
    y[i] = f(f(d * scale) * ((low | (high << 4)) - 32));
  }
}

/** One block (at `b`'s start) to its blockElements values. */
export function dequantizeBlock(format: QuantFormat, b: Uint8Array): Float32Array {
  const y = new Float32Array(QUANT_FORMATS[format].blockElements);
  if (format === "q8_0") dequantizeQ8_0(b, y);
  else if (format === "q4_0") dequantizeQ4_0(b, y);
  else if (format === "q4_1" || format === "q5_0" || format === "q5_1") dequantizeQ451(format, b, y);
  else if (format === "q4_k") dequantizeQ45K(b, y, false);
  else if (format === "q5_k") dequantizeQ45K(b, y, true);
  else dequantizeQ6K(b, y);
  return y;
}

/** Whole blocks of `format` to their values. */
export function dequantize(format: QuantFormat, bytes: Uint8Array): Float32Array {
  const { blockElements, blockBytes } = QUANT_FORMATS[format];
  const blocks = bytes.byteLength / blockBytes;
  const out = new Float32Array(blocks * blockElements);
  for (let i = 0; i < blocks; i++)
    out.set(dequantizeBlock(format, bytes.subarray(i * blockBytes, (i + 1) * blockBytes)), i * blockElements);
  return out;
}

// ---- quantizers --------------------------------------------------------------------------------

function quantizeQ8_0(x: Float32Array, b: Uint8Array): void {
  const d = f(maxAbs(x, 0, 32) / 127);
  const id = d > 0 ? f(1 / d) : 0;
  writeHalf(b, 0, d);
  for (let i = 0; i < 32; i++) b[2 + i] = clamp(nearest(f(x[i]! * id)), -127, 127) & 0xff;
}

function quantizeQ4_0(x: Float32Array, b: Uint8Array): void {
  const d = f(maxAbs(x, 0, 32) / 7);
  const id = d > 0 ? f(1 / d) : 0;
  writeHalf(b, 0, d);
  for (let i = 0; i < 16; i++) {
    const lo = clamp(nearest(f(x[i]! * id)) + 8, 0, 15);
    const hi = clamp(nearest(f(x[i + 16]! * id)) + 8, 0, 15);
    b[2 + i] = lo | (hi << 4);
  }
}

function quantizeQ451(format: Q451Format, x: Float32Array, b: Uint8Array): void {
  const { qs, high } = Q451[format];
  const q: number[] = [];
  if (format === "q5_0") {
    const d = f(maxAbs(x, 0, 32) / 15);
    const id = d > 0 ? f(1 / d) : 0;
    writeHalf(b, 0, d);
    for (let i = 0; i < 32; i++) q.push(clamp(nearest(f(x[i]! * id)) + 16, 0, 31));
  } else {
    const levels = format === "q4_1" ? 15 : 31;
    let lo = x[0]!;
    let hi = x[0]!;
    for (let i = 1; i < 32; i++) {
      lo = Math.min(lo, x[i]!);
      hi = Math.max(hi, x[i]!);
    }
    writeHalf(b, 0, f(f(hi - lo) / levels));
    writeHalf(b, 2, lo);
    const dq = readHalf(b, 0);
    const mq = readHalf(b, 2);
    for (let i = 0; i < 32; i++) q.push(dq > 0 ? clamp(nearest(f(f(x[i]! - mq) / dq)), 0, levels) : 0);
  }
  for (let i = 0; i < 16; i++) b[qs + i] = (q[i]! & 0xf) | ((q[i + 16]! & 0xf) << 4);
  if (high !== null) {
    b.fill(0, high, high + 4);
    for (let i = 0; i < 32; i++) b[high + (i >> 3)]! |= (q[i]! >> 4) << (i & 7);
  }
}

function quantizeQ45K(x: Float32Array, b: Uint8Array, five: boolean): void {
  const levels = five ? 31 : 15;
  const scale: number[] = [];
  const min: number[] = [];
  for (let j = 0; j < 8; j++) {
    let lo = 0;
    let hi = 0;
    for (let l = 0; l < 32; l++) {
      lo = Math.min(lo, x[32 * j + l]!);
      hi = Math.max(hi, x[32 * j + l]!);
    }
    scale.push(f(f(hi - lo) / levels));
    min.push(-lo);
  }
  writeHalf(b, 0, f(Math.max(...scale) / 63));
  writeHalf(b, 2, f(Math.max(...min) / 63));
  const dq = readHalf(b, 0);
  const dminq = readHalf(b, 2);
  const scales = scale.map((s) => (dq > 0 ? clamp(nearest(f(s / dq)), 0, 63) : 0));
  const mins = min.map((m) => (dminq > 0 ? clamp(nearest(f(m / dminq)), 0, 63) : 0));
  packScaleMins(scales, mins, b, 4);
  const qs = five ? 48 : 16;
  b.fill(0, 16, five ? 176 : 144);
  for (let j = 0; j < 8; j++) {
    const ds = f(dq * scales[j]!);
    const dm = f(dminq * mins[j]!);
    for (let l = 0; l < 32; l++) {
      const q = ds > 0 ? clamp(nearest(f(f(x[32 * j + l]! + dm) / ds)), 0, levels) : 0;
      b[qs + 32 * (j >> 1) + l]! |= (q & 0xf) << ((j & 1) * 4);
      if (five) b[16 + l]! |= (q >> 4) << j;
    }
  }
}

function quantizeQ6K(x: Float32Array, b: Uint8Array): void {
  const scale: number[] = [];
  for (let j = 0; j < 16; j++) scale.push(f(maxAbs(x, 16 * j, 16) / 31));
  writeHalf(b, 208, f(Math.max(...scale) / 127));
  const dq = readHalf(b, 208);
  const sc = scale.map((s) => (dq > 0 ? clamp(nearest(f(s / dq)), 0, 127) : 0));
  sc.forEach((s, j) => {
    b[192 + j] = s;
  });
  b.fill(0, 0, 192);
  for (let i = 0; i < 256; i++) {
    const ds = f(dq * sc[i >> 4]!);
    const q = ds > 0 ? clamp(nearest(f(x[i]! / ds)) + 32, 0, 63) : 32;
    const h = i >> 7;
    const g = (i & 127) >> 5;
    const l = i & 31;
    b[64 * h + l + 32 * (g & 1)]! |= (q & 0xf) << (4 * (g >> 1));
    b[128 + 32 * h + l]! |= (q >> 4) << (2 * g);
  }
}

/** One block's values (blockElements of them) to its bytes. */
export function quantizeBlock(format: QuantFormat, x: Float32Array): Uint8Array {
  const b = new Uint8Array(QUANT_FORMATS[format].blockBytes);
  if (format === "q8_0") quantizeQ8_0(x, b);
  else if (format === "q4_0") quantizeQ4_0(x, b);
  else if (format === "q4_1" || format === "q5_0" || format === "q5_1") quantizeQ451(format, x, b);
  else if (format === "q4_k") quantizeQ45K(x, b, false);
  else if (format === "q5_k") quantizeQ45K(x, b, true);
  else quantizeQ6K(x, b);
  return b;
}

/** Values (whole blocks of them) to `format`'s bytes. */
export function quantize(format: QuantFormat, values: Float32Array): Uint8Array {
  const { blockElements, blockBytes } = QUANT_FORMATS[format];
  if (values.length % blockElements !== 0)
    throw new Error(`${values.length} values are not whole ${format} blocks of ${blockElements}`);
  const out = new Uint8Array((values.length / blockElements) * blockBytes);
  for (let i = 0; i < values.length / blockElements; i++)
    out.set(quantizeBlock(format, values.subarray(i * blockElements, (i + 1) * blockElements)), i * blockBytes);
  return out;
}

/**
 * Rows of activations as the CPU's integer decode path reads them for weights of `format` (x
 * quantized to int8 per block of the format's size with the scale max |x| / 127, kept in f32):
 * each value's dequantized f32.
 */
export function quantizeActivations(x: Float32Array, format: QuantFormat): Float32Array {
  const block = QUANT_FORMATS[format].blockElements;
  const out = new Float32Array(x.length);
  for (let b = 0; b < x.length / block; b++) {
    const d = f(maxAbs(x, block * b, block) / 127);
    const id = d > 0 ? f(1 / d) : 0;
    for (let i = block * b; i < block * (b + 1); i++) out[i] = clamp(nearest(f(x[i]! * id)), -127, 127) * d;
  }
  return out;
}
