// The model-layer ops (embedding, RMSNorm, rotary embedding, SiLU-and-mul, row gather) against
// the TypeScript references, for every weight storage dtype.
import { describe, expect, test } from "bun:test";
import type { DType } from "../../src/backend/dtype.ts";
import * as ref from "../../src/reference/ops.ts";
import { expectClose, randomValues, rounded, useCpuDevice } from "../helpers/native.ts";

const device = await useCpuDevice();
const backend = device.backend;
const weightDtypes: DType[] = ["f32", "f16", "bf16"];

describe("vt_embedding", () => {
  for (const weightDtype of weightDtypes)
    test(`copies table rows exactly, zero rows for ids outside the table (${weightDtype} table)`, () => {
      const vocabSize = 50;
      const hiddenSize = 72;
      const table = rounded(randomValues(vocabSize * hiddenSize, 1), weightDtype);
      const tokenIds = [3, 0, 49, -1, 50, 3, 17];
      const out = device.alloc(tokenIds.length * hiddenSize * 4);
      backend.embedding({
        tokenIds: device.uploadInt32(tokenIds), numTokens: tokenIds.length, table: device.upload(table, weightDtype),
        vocabSize, hiddenSize, out, weightDtype, actDtype: "f32",
      });
      expect(device.download(out, tokenIds.length * hiddenSize)).toEqual(ref.embedding(table, hiddenSize, tokenIds));
    });
});

describe("vt_rms_norm", () => {
  const hiddenSize = 1000;
  const numTokens = 5;
  const eps = 1e-6;

  for (const weightDtype of weightDtypes)
    test(`normalizes rows without a residual (${weightDtype} weight)`, () => {
      const input = randomValues(numTokens * hiddenSize, 2, 3);
      const weight = rounded(randomValues(hiddenSize, 3), weightDtype);
      const out = device.alloc(input.byteLength);
      backend.rmsNorm({
        input: device.upload(input), residual: null, weight: device.upload(weight, weightDtype), out, numTokens,
        hiddenSize, eps, actDtype: "f32", weightDtype,
      });
      expectClose(device.download(out, input.length), ref.rmsNorm(input, weight, eps).out);
    });

  for (const weightDtype of weightDtypes)
    test(`adds the residual, stores the sum and normalizes it, in place (${weightDtype} weight)`, () => {
      const input = randomValues(numTokens * hiddenSize, 4);
      const residual = randomValues(numTokens * hiddenSize, 5, 10);
      const weight = rounded(randomValues(hiddenSize, 6), weightDtype);
      const expected = ref.rmsNorm(input, weight, eps, residual);
      const inputAddress = device.upload(input);
      const residualAddress = device.upload(residual);
      backend.rmsNorm({
        input: inputAddress, residual: residualAddress, weight: device.upload(weight, weightDtype), out: inputAddress,
        numTokens, hiddenSize, eps, actDtype: "f32", weightDtype,
      });
      expect(device.download(residualAddress, input.length)).toEqual(expected.residual!);
      expectClose(device.download(inputAddress, input.length), expected.out);
    });
});

describe("vt_head_rms_norm", () => {
  for (const [headDim, weightDtype] of [
    [64, "bf16"],
    [128, "f32"],
    [128, "f16"],
  ] as const)
    test(`normalizes each head of a fused QKV row in place, leaving the rest (head_dim ${headDim}, ${weightDtype})`, () => {
      const numTokens = 3;
      const numHeads = 4;
      const rowStride = (numHeads + 2 * 2) * headDim;
      const x = randomValues(numTokens * rowStride, 7, 2);
      const weight = rounded(randomValues(headDim, 8), weightDtype);
      const address = device.upload(x);
      backend.headRmsNorm({
        x: address, weight: device.upload(weight, weightDtype), numTokens, numHeads, headDim, rowStride, eps: 1e-6,
        actDtype: "f32", weightDtype,
      });
      const expected = ref.headRmsNorm(x, weight, { numTokens, numHeads, rowStride, eps: 1e-6 });
      expectClose(device.download(address, x.length), expected);
    });
});

describe("vt_rope_cos_sin_cache", () => {
  const llama3 = { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPosition: 8192 };

  test("llama3 scaling keeps high frequencies, divides low ones by factor and blends between", () => {
    const plain = ref.ropeInverseFrequencies(128, 500000);
    const scaled = ref.ropeInverseFrequencies(128, 500000, llama3);
    const wavelength = (f: number) => (2 * Math.PI) / f;
    let blended = 0;
    for (let i = 0; i < plain.length; i++) {
      const w = wavelength(plain[i]!);
      if (w < 8192 / 4) expect(scaled[i]).toBe(plain[i]!);
      else if (w > 8192) expect(scaled[i]).toBeCloseTo(plain[i]! / 8, 15);
      else {
        blended++;
        expect(scaled[i]).toBeLessThan(plain[i]!);
        expect(scaled[i]).toBeGreaterThan(plain[i]! / 8);
      }
    }
    expect(blended).toBeGreaterThan(0);
  });

  for (const [name, scaling] of [
    ["no scaling", null],
    ["llama3 scaling", llama3],
  ] as const)
    test(`matches cos and sin of position times inverse frequency (${name})`, () => {
      const maxPosition = 3000;
      const rotaryDim = 128;
      const cosSin = device.alloc(maxPosition * rotaryDim * 4);
      backend.ropeCosSinCache({ cosSin, maxPosition, rotaryDim, theta: 500000, llama3: scaling });
      const expected = ref.ropeCosSinCache(maxPosition, rotaryDim, 500000, scaling);
      expectClose(device.download(cosSin, expected.length), expected, { rtol: 0, atol: 1e-7 });
    });
});

describe("vt_rotary_embedding", () => {
  for (const [headDim, rotaryDim] of [
    [64, 64],
    [128, 128],
    [64, 32],
  ] as const)
    test(`rotates q and k heads of a fused QKV row, leaving v (head_dim ${headDim}, rotary_dim ${rotaryDim})`, () => {
      const numTokens = 6;
      const numQHeads = 4;
      const numKvHeads = 2;
      const rowStride = (numQHeads + 2 * numKvHeads) * headDim;
      const maxPosition = 100;
      const positions = [0, 1, 57, 99, 3, 57];
      const qkv = randomValues(numTokens * rowStride, 9);
      const cosSin = ref.ropeCosSinCache(maxPosition, rotaryDim, 10000);
      const address = device.upload(qkv);
      const kOffset = numQHeads * headDim;
      backend.rotaryEmbedding({
        positions: device.uploadInt32(positions), q: address, k: address + kOffset * 4, cosSin: device.upload(cosSin),
        numTokens, numQHeads, numKvHeads, headDim, rotaryDim, rowStride, actDtype: "f32",
      });
      const expected = ref.rotaryEmbedding(qkv, positions, cosSin, { numHeads: numQHeads, headDim, rotaryDim, rowStride });
      const rotatedK = ref.rotaryEmbedding(expected.subarray(kOffset), positions, cosSin, {
        numHeads: numKvHeads, headDim, rotaryDim, rowStride,
      });
      expected.set(rotatedK, kOffset);
      expectClose(device.download(address, qkv.length), expected);
    });
});

describe("vt_silu_and_mul", () => {
  test("multiplies silu(gate) by up across column pieces", () => {
    const d = 2500;
    const numTokens = 3;
    const x = randomValues(numTokens * 2 * d, 10, 8);
    const out = device.alloc(numTokens * d * 4);
    backend.siluAndMul({ x: device.upload(x), out, numTokens, d, actDtype: "f32" });
    expectClose(device.download(out, numTokens * d), ref.siluAndMul(x, d));
  });
});

describe("vt_gather_rows", () => {
  test("copies the indexed rows, repeats included", () => {
    const rowLength = 33;
    const src = randomValues(10 * rowLength, 11);
    const indices = [4, 0, 4, 9];
    const dst = device.alloc(indices.length * rowLength * 4);
    backend.gatherRows({
      dst, src: device.upload(src), indices: device.uploadInt32(indices), numRows: indices.length, rowBytes: rowLength * 4,
    });
    expect(device.download(dst, indices.length * rowLength)).toEqual(ref.gatherRows(src, rowLength, indices));
  });
});

describe("argument errors", () => {
  test("a NULL pointer is an invalid argument naming the op", () => {
    const weight = device.upload(new Float32Array(8));
    expect(() =>
      backend.rmsNorm({
        input: 0, residual: null, weight, out: weight, numTokens: 1, hiddenSize: 8, eps: 1e-6, actDtype: "f32",
        weightDtype: "f32",
      }),
    ).toThrow(/status 1\): vt_rms_norm: .*NULL/);
  });

  test("bf16 activations are unsupported by the CPU backend", () => {
    const x = device.upload(new Float32Array(8));
    expect(() => backend.siluAndMul({ x, out: x, numTokens: 1, d: 4, actDtype: "bf16" })).toThrow(
      /status 3\): vt_silu_and_mul: .*bf16/,
    );
  });

  test("a negative size is an invalid argument", () => {
    const x = device.upload(new Float32Array(8));
    expect(() => backend.siluAndMul({ x, out: x, numTokens: -1, d: 4, actDtype: "f32" })).toThrow(
      /status 1\): vt_silu_and_mul/,
    );
  });

  test("a rotary_dim beyond head_dim is an invalid argument", () => {
    const x = device.upload(new Float32Array(64));
    expect(() =>
      backend.rotaryEmbedding({
        positions: device.uploadInt32([0]), q: x, k: x, cosSin: x, numTokens: 1, numQHeads: 1, numKvHeads: 1,
        headDim: 16, rotaryDim: 32, rowStride: 16, actDtype: "f32",
      }),
    ).toThrow(/status 1\): vt_rotary_embedding: rotary_dim/);
  });
});
