// The quantized weight formats (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K): vt_convert's
// quantizer and dequantizer bit for bit against the TypeScript reference; vt_matmul with
// quantized weights against an f64 product with the dequantized weights (decode and prefill
// shapes, with a bias; f32 activations, and on CUDA 16-bit ones through the tensor-core path);
// the argument checks. The reference's block layouts are tested in test/reference/quant.test.ts.
import { describe, expect, test } from "bun:test";
import { offsetAddress } from "../../src/backend/address.ts";
import type { Address } from "../../src/backend/backend.ts";
import { encodeFromF32 } from "../../src/backend/dtype.ts";
import { ALL_QUANT_FORMATS, QUANT_FORMATS, type QuantFormat } from "../../src/backend/weight-format.ts";
import { referenceMatmul } from "../../src/reference/matmul.ts";
import { dequantize, quantize, quantizeActivations } from "../../src/reference/quant.ts";
import { expectClose, randomValues, rounded, useTestDevice } from "../helpers/native.ts";

const device = await useTestDevice();
const backend = device.backend;

/** Values with the spread of real weights: mostly small, some blocks all zero, some outliers. */
function weightLike(count: number, seed: number): Float32Array {
  const values = randomValues(count, seed);
  for (let i = 0; i < count; i++) values[i] = values[i]! ** 3 * (i % 97 === 0 ? 8 : 1);
  values.fill(0, 0, Math.min(count, 64));
  return values;
}

/** Quantized weights [n, k] on the device, packed for vt_matmul. */
function uploadWeights(format: QuantFormat, blocks: Uint8Array, n: number, k: number) {
  const address = device.alloc(blocks.byteLength);
  backend.upload(address, blocks);
  backend.packWeights({ w: address, n, k, format });
  return address;
}

describe.each(ALL_QUANT_FORMATS)("%s", (format: QuantFormat) => {
  const { blockElements } = QUANT_FORMATS[format];

  test("vt_convert quantizes and dequantizes as the reference does, bit for bit", () => {
    const count = blockElements * 7;
    const values = weightLike(count, 3);
    const expected = quantize(format, values);
    const blocks = device.alloc(expected.byteLength);
    backend.convert(blocks, format, device.upload(values), "f32", count);
    const got = backend.download(new Uint8Array(expected.byteLength), blocks);
    expect(Buffer.from(got).equals(Buffer.from(expected))).toBe(true);

    const back = device.alloc(count * 4);
    backend.convert(back, "f32", blocks, format, count);
    expect(device.download(back, count)).toEqual(dequantize(format, expected));
    // From bf16 weights, as a model quantized on load starts.
    const fromBf16 = device.alloc(expected.byteLength);
    backend.convert(fromBf16, format, device.upload(values, "bf16"), "bf16", count);
    const viaBf16 = backend.download(new Uint8Array(expected.byteLength), fromBf16);
    expect(Buffer.from(viaBf16).equals(Buffer.from(quantize(format, rounded(values, "bf16"))))).toBe(true);
  });

  // m: decode (1, 3), the CUDA gemv's limit (8) and past it, 40 rows (the CPU's 4 rows of x at a
  // time, and a remainder); n: two groups of 16 rows and a short one (the CPU's interleaved layout).
  test.each([1, 3, 8, 9, 40])("vt_matmul with m = %i matches the product with the dequantized weights", (m) => {
    const n = 37;
    const k = blockElements * (blockElements === 32 ? 9 : 2);
    const x = randomValues(m * k, 11);
    const blocks = quantize(format, weightLike(n * k, 12));
    const bias = randomValues(n, 13);
    const out = device.alloc(m * n * 4);
    backend.matmul({
      x: device.upload(x),
      w: uploadWeights(format, blocks, n, k),
      bias: device.upload(bias),
      out,
      m,
      n,
      k,
      actDtype: "f32",
      weightDtype: format,
    });
    // x quantized to int8 per block, as llama.cpp does: on the CPU always, on CUDA in the decode
    // kernel (m <= 8; its tiled kernels keep x in f32).
    const xRead = backend.name === "cpu" || m <= 8 ? quantizeActivations(x, format) : x;
    const expected = referenceMatmul(xRead, dequantize(format, blocks), bias, m, n, k);
    expectClose(device.download(out, m * n), expected, { rtol: 0, atol: 1e-5 * Math.sqrt(k) });
  });

  // CUDA's decode kernel quantizes x into shared memory 4096 values of 8 rows at a time: k past
  // that takes a second, partial tile.
  test("vt_matmul with m = 8 and k = 4352 (two tiles of x) matches the product with the dequantized weights", () => {
    const m = 8;
    const n = 20;
    const k = 4352;
    const x = randomValues(m * k, 14);
    const blocks = quantize(format, weightLike(n * k, 15));
    const out = device.alloc(m * n * 4);
    backend.matmul({
      x: device.upload(x),
      w: uploadWeights(format, blocks, n, k),
      out,
      m,
      n,
      k,
      actDtype: "f32",
      weightDtype: format,
    });
    const expected = referenceMatmul(quantizeActivations(x, format), dequantize(format, blocks), null, m, n, k);
    expectClose(device.download(out, m * n), expected, { rtol: 0, atol: 1e-5 * Math.sqrt(k) });
  });
});

// 16-bit activations (the CUDA backend's model path): the decode kernel (m <= 8) and, past it, the
// tensor-core GEMM with w's tiles dequantized as they are staged: 64 x 64 tiles (m <= 64) and
// 128 x 128 ones, n off the tile widths, k over several 32-deep slices, x unaligned (element-wise
// loads) once. The CPU computes in f32 and refuses them (status 3).
const halfUlp = { bf16: 2 ** -8, f16: 2 ** -11 } as const;
describe.each(["q4_0", "q5_1", "q4_k", "q6_k"] as const)("%s with 16-bit activations", (format) => {
  const { blockElements } = QUANT_FORMATS[format];
  const cases: [m: number, n: number, dtype: "bf16" | "f16", xOffset: number][] = [
    [3, 37, "bf16", 0],
    [9, 70, "f16", 0],
    [40, 37, "bf16", 0],
    [130, 136, "bf16", 0],
    [17, 20, "f16", 2],
  ];
  test.each(cases)("m = %i, n = %i, %s activations (x offset by %i bytes)", (m, n, dtype, xOffset) => {
    const k = blockElements === 32 ? 96 : 256;
    const x = rounded(randomValues(m * k, 21), dtype);
    const blocks = quantize(format, weightLike(n * k, 22));
    const bias = rounded(randomValues(n, 23), dtype);
    const xBase = device.alloc(m * k * 2 + xOffset);
    const xAddress = (xBase + xOffset) as Address;
    backend.upload(xAddress, encodeFromF32(x, dtype));
    const out = device.alloc(m * n * 2);
    const ran = device.ranWithHalfActivations("vt_matmul", () =>
      backend.matmul({
        x: xAddress,
        w: uploadWeights(format, blocks, n, k),
        bias: device.upload(bias, dtype),
        out,
        m,
        n,
        k,
        actDtype: dtype,
        weightDtype: format,
      }),
    );
    if (!ran) return;
    // The decode kernel (m <= 8) quantizes x to int8; the tensor-core path rounds the dequantized
    // weights to the activations' dtype.
    const weights = dequantize(format, blocks);
    const expected =
      m > 8
        ? referenceMatmul(x, rounded(weights, dtype), bias, m, n, k)
        : referenceMatmul(quantizeActivations(x, format), weights, bias, m, n, k);
    expectClose(device.download(out, m * n, dtype), expected, { rtol: halfUlp[dtype], atol: 1e-5 * Math.sqrt(k) });
  });
});

describe("argument checks", () => {
  test("k must be whole blocks, and two quantized formats do not convert into each other", () => {
    const x = device.upload(randomValues(48, 1));
    const w = device.alloc(1024);
    const out = device.alloc(4 * 4);
    expect(() => backend.matmul({ x, w, out, m: 1, n: 1, k: 48, actDtype: "f32", weightDtype: "q8_0" })).toThrow(
      /k 48 is not a multiple of q8_0's block of 32/,
    );
    expect(() => backend.convert(w, "q4_0", w, "q8_0", 32)).toThrow(/cannot convert between two quantized formats/);
    expect(() => backend.convert(w, "f32", w, "q4_k", 100)).toThrow(
      /count 100 is not a multiple of q4_k's block of 256/,
    );
  });

  // The CUDA kernels read Q4_K's blocks 16 bytes at a time (the CPU packs its own copy).
  test("on CUDA, quantized weights must start aligned for the kernels' loads", () => {
    if (backend.name !== "cuda") return;
    const x = device.upload(randomValues(256, 1));
    const w = device.alloc(1024);
    const out = device.alloc(4);
    const at = (offset: number) => () =>
      backend.matmul({ x, w: offsetAddress(w, offset), out, m: 1, n: 1, k: 256, actDtype: "f32", weightDtype: "q4_k" });
    expect(at(8)).toThrow(/vt_matmul: w must start 16-byte aligned for q4_k weights/);
    at(16)();
  });

  test("vt_pack_weights takes whole blocks of a quantized format", () => {
    const w = device.alloc(1024);
    expect(() => backend.packWeights({ w, n: 2, k: 48, format: "q8_0" })).toThrow(
      /vt_pack_weights: k 48 is not a multiple of q8_0's block of 32/,
    );
    expect(() => backend.packWeights({ w, n: 0, k: 32, format: "q8_0" })).toThrow(/need n > 0 and k > 0/);
    expect(() => backend.packWeights({ w, n: 1, k: 32, format: "bf16" as QuantFormat })).toThrow(
      /dtype 2 is not a quantized format/,
    );
  });
});
