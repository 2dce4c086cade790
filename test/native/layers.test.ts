// The model-layer ops (embedding, RMSNorm, rotary embedding, SiLU- and GELU-and-mul, soft-capping,
// row gather) against
// the TypeScript references, for every weight storage dtype.
import { describe, expect, test } from "bun:test";
import { offsetAddress } from "../../src/backend/address.ts";
import type { DType } from "../../src/backend/dtype.ts";
import * as ref from "../../src/reference/ops.ts";
import { expectClose, NULL_ADDRESS, randomValues, rounded, useTestDevice } from "../helpers/native.ts";

const device = await useTestDevice();
const backend = device.backend;
const weightDtypes: DType[] = ["f32", "f16", "bf16"];

// 16-bit activations: the CUDA backend computes them (with weights of the same dtype), the CPU
// backend rejects them with VT_ERR_UNSUPPORTED (status 3).
const halfDtypes = ["bf16", "f16"] as const;
type HalfDtype = (typeof halfDtypes)[number];

/** Outputs stored in a 16-bit dtype: half an ulp of rounding, plus f32 arithmetic. */
const halfTolerance: Record<HalfDtype, { rtol: number; atol: number }> = {
  bf16: { rtol: 4e-3, atol: 1e-5 },
  f16: { rtol: 5e-4, atol: 1e-5 },
};

/**
 * Runs an op with 16-bit activations: on the CUDA backend it must succeed (true: the caller
 * checks its results); on the CPU backend it must fail with status 3 naming the op (false).
 */
describe("vt_embedding", () => {
  for (const weightDtype of weightDtypes)
    test(`copies table rows exactly, zero rows for ids outside the table (${weightDtype} table)`, () => {
      const vocabSize = 50;
      const hiddenSize = 72;
      const table = rounded(randomValues(vocabSize * hiddenSize, 1), weightDtype);
      const tokenIds = [3, 0, 49, -1, 50, 3, 17];
      const out = device.alloc(tokenIds.length * hiddenSize * 4);
      backend.embedding({
        tokenIds: device.uploadInt32(tokenIds),
        numTokens: tokenIds.length,
        table: device.upload(table, weightDtype),
        vocabSize,
        hiddenSize,
        out,
        weightDtype,
        actDtype: "f32",
      });
      expect(device.download(out, tokenIds.length * hiddenSize)).toEqual(ref.embedding(table, hiddenSize, tokenIds));
    });

  test("multiplies every row by the scale (Gemma's sqrt(hidden_size))", () => {
    const vocabSize = 20;
    const hiddenSize = 48;
    const scale = Math.fround(Math.sqrt(hiddenSize));
    const table = randomValues(vocabSize * hiddenSize, 2);
    const tokenIds = [5, 19, -1, 0];
    const out = device.alloc(tokenIds.length * hiddenSize * 4);
    backend.embedding({
      tokenIds: device.uploadInt32(tokenIds),
      numTokens: tokenIds.length,
      table: device.upload(table),
      vocabSize,
      hiddenSize,
      scale,
      out,
      weightDtype: "f32",
      actDtype: "f32",
    });
    expect(device.download(out, tokenIds.length * hiddenSize)).toEqual(
      ref.embedding(table, hiddenSize, tokenIds, scale),
    );
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
        input: device.upload(input),
        residual: null,
        weight: device.upload(weight, weightDtype),
        out,
        numTokens,
        hiddenSize,
        eps,
        actDtype: "f32",
        weightDtype,
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
        input: inputAddress,
        residual: residualAddress,
        weight: device.upload(weight, weightDtype),
        out: inputAddress,
        numTokens,
        hiddenSize,
        eps,
        actDtype: "f32",
        weightDtype,
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
        x: address,
        weight: device.upload(weight, weightDtype),
        numTokens,
        numHeads,
        headDim,
        rowStride,
        eps: 1e-6,
        actDtype: "f32",
        weightDtype,
      });
      const expected = ref.headRmsNorm(x, weight, { numTokens, numHeads, rowStride, eps: 1e-6 });
      expectClose(device.download(address, x.length), expected);
    });
});

describe("vt_rope_cos_sin_cache", () => {
  const llama3 = { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPosition: 8192 } as const;
  const linear = { type: "linear", factor: 8 } as const;

  test("linear scaling divides every frequency by the factor", () => {
    const plain = ref.ropeInverseFrequencies(128, 1000000);
    const scaled = ref.ropeInverseFrequencies(128, 1000000, linear);
    expect(scaled).toEqual(plain.map((f) => f / 8));
  });

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
    ["linear scaling", linear],
  ] as const)
    test(`matches cos and sin of position times inverse frequency (${name})`, () => {
      const maxPosition = 3000;
      const rotaryDim = 128;
      const cosSin = device.alloc(maxPosition * rotaryDim * 4);
      backend.ropeCosSinCache({ cosSin, maxPosition, rotaryDim, theta: 500000, scaling });
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
        positions: device.uploadInt32(positions),
        q: address,
        k: offsetAddress(address, kOffset * 4),
        cosSin: device.upload(cosSin),
        numTokens,
        numQHeads,
        numKvHeads,
        headDim,
        rotaryDim,
        rowStride,
        actDtype: "f32",
      });
      const expected = ref.rotaryEmbedding(qkv, positions, cosSin, {
        numHeads: numQHeads,
        headDim,
        rotaryDim,
        rowStride,
      });
      const rotatedK = ref.rotaryEmbedding(expected.subarray(kOffset), positions, cosSin, {
        numHeads: numKvHeads,
        headDim,
        rotaryDim,
        rowStride,
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

describe("vt_gelu_tanh_and_mul", () => {
  test("multiplies gelu_tanh(gate) by up across column pieces", () => {
    const d = 2500;
    const numTokens = 3;
    const x = randomValues(numTokens * 2 * d, 12, 8);
    const out = device.alloc(numTokens * d * 4);
    backend.geluTanhAndMul({ x: device.upload(x), out, numTokens, d, actDtype: "f32" });
    expectClose(device.download(out, numTokens * d), ref.geluTanhAndMul(x, d));
  });

  test("is the tanh approximation of GELU: gelu_tanh(1) = 0.8411920, gelu_tanh(-3) = -0.0036374", () => {
    const x = Float32Array.from([1, -3, 1, 1]);
    const out = device.alloc(2 * 4);
    backend.geluTanhAndMul({ x: device.upload(x), out, numTokens: 1, d: 2, actDtype: "f32" });
    expectClose(device.download(out, 2), Float32Array.from([0.841192, -0.0036374]), { rtol: 1e-5, atol: 1e-7 });
  });
});

describe("vt_soft_cap", () => {
  test("squeezes values into (-cap, cap): cap * tanh(x / cap), nearly the identity for small x", () => {
    const count = 10000;
    const x = randomValues(count, 13, 100);
    const address = device.upload(x);
    backend.softCap({ x: address, count, cap: 30, actDtype: "f32" });
    const out = device.download(address, count);
    expectClose(out, ref.softCapAll(x, 30));
    expect(Math.max(...out.map(Math.abs))).toBeLessThan(30);
  });

  test("a cap that is not positive is an invalid argument", () => {
    const x = device.upload(new Float32Array(4));
    expect(() => backend.softCap({ x, count: 4, cap: 0, actDtype: "f32" })).toThrow(
      /status 1\): vt_soft_cap: cap must be positive/,
    );
  });
});

describe("vt_gather_rows", () => {
  test("copies the indexed rows, repeats included", () => {
    const rowLength = 33;
    const src = randomValues(10 * rowLength, 11);
    const indices = [4, 0, 4, 9];
    const dst = device.alloc(indices.length * rowLength * 4);
    backend.gatherRows({
      dst,
      src: device.upload(src),
      indices: device.uploadInt32(indices),
      numRows: indices.length,
      rowBytes: rowLength * 4,
    });
    expect(device.download(dst, indices.length * rowLength)).toEqual(ref.gatherRows(src, rowLength, indices));
  });

  // Row sizes that allow copies in 16-, 8-, 2- and 1-byte units, and a 600 KB logits row.
  for (const rowBytes of [64, 24, 6, 7, 151_936 * 4])
    test(`copies rows of ${rowBytes} bytes exactly`, () => {
      const numSrcRows = 5;
      const src = Uint8Array.from(randomValues(numSrcRows * rowBytes, 12), (x) => Math.floor((x + 1) * 128));
      const indices = [4, 0, 4, 2];
      const srcAddress = device.alloc(src.byteLength);
      backend.upload(srcAddress, src);
      const dst = device.alloc(indices.length * rowBytes);
      backend.gatherRows({
        dst,
        src: srcAddress,
        indices: device.uploadInt32(indices),
        numRows: indices.length,
        rowBytes,
      });
      const expected = new Uint8Array(indices.length * rowBytes);
      indices.forEach((row, i) => {
        expected.set(src.subarray(row * rowBytes, (row + 1) * rowBytes), i * rowBytes);
      });
      expect(backend.download(new Uint8Array(expected.length), dst)).toEqual(expected);
    });

  test("a negative index: rejected by the CPU (which reads indices on the host), a zero row on CUDA", () => {
    const rowLength = 8;
    const src = randomValues(3 * rowLength, 13);
    const dst = device.upload(new Float32Array(2 * rowLength).fill(5));
    const run = () =>
      backend.gatherRows({
        dst,
        src: device.upload(src),
        indices: device.uploadInt32([2, -1]),
        numRows: 2,
        rowBytes: rowLength * 4,
      });
    if (backend.name === "cpu") expect(run).toThrow(/status 1\): vt_gather_rows: indices\[1\] is negative/);
    else {
      run();
      const expected = new Float32Array(2 * rowLength);
      expected.set(src.subarray(2 * rowLength));
      expect(device.download(dst, 2 * rowLength)).toEqual(expected);
    }
  });
});

describe("16-bit activations (CUDA; the CPU backend rejects them)", () => {
  // Shapes come in pairs: one the kernels take with 16-byte vectors, one (odd sizes) that takes
  // their element-by-element path.
  for (const act of halfDtypes) {
    for (const hiddenSize of [72, 13])
      test(`vt_embedding copies ${act} rows exactly (hidden_size ${hiddenSize})`, () => {
        const vocabSize = 50;
        const table = rounded(randomValues(vocabSize * hiddenSize, 40), act);
        const tokenIds = [3, 0, 49, -1, 50, 3, 17];
        const out = device.alloc(tokenIds.length * hiddenSize * 2);
        const ran = device.ranWithHalfActivations("vt_embedding", () =>
          backend.embedding({
            tokenIds: device.uploadInt32(tokenIds),
            numTokens: tokenIds.length,
            table: device.upload(table, act),
            vocabSize,
            hiddenSize,
            out,
            weightDtype: act,
            actDtype: act,
          }),
        );
        if (ran)
          expect(device.download(out, tokenIds.length * hiddenSize, act)).toEqual(
            ref.embedding(table, hiddenSize, tokenIds),
          );
      });

    for (const hiddenSize of [1000, 300])
      test(`vt_rms_norm in ${act}, with and without the residual (hidden_size ${hiddenSize})`, () => {
        const numTokens = 5;
        const eps = 1e-6;
        const input = rounded(randomValues(numTokens * hiddenSize, 41, 3), act);
        const residual = rounded(randomValues(numTokens * hiddenSize, 42, 10), act);
        const weight = rounded(randomValues(hiddenSize, 43), act);
        const weightAddress = device.upload(weight, act);
        const out = device.alloc(numTokens * hiddenSize * 2);
        const plain = () =>
          backend.rmsNorm({
            input: device.upload(input, act),
            residual: null,
            weight: weightAddress,
            out,
            numTokens,
            hiddenSize,
            eps,
            actDtype: act,
            weightDtype: act,
          });
        if (!device.ranWithHalfActivations("vt_rms_norm", plain)) return;
        expectClose(device.download(out, input.length, act), ref.rmsNorm(input, weight, eps).out, halfTolerance[act]);

        // In place: the sum is stored rounded to the dtype, and that stored sum is normalized.
        const inputAddress = device.upload(input, act);
        const residualAddress = device.upload(residual, act);
        backend.rmsNorm({
          input: inputAddress,
          residual: residualAddress,
          weight: weightAddress,
          out: inputAddress,
          numTokens,
          hiddenSize,
          eps,
          actDtype: act,
          weightDtype: act,
        });
        const sum = rounded(
          input.map((x, i) => x + residual[i]!),
          act,
        );
        expect(device.download(residualAddress, input.length, act)).toEqual(sum);
        expectClose(
          device.download(inputAddress, input.length, act),
          ref.rmsNorm(sum, weight, eps).out,
          halfTolerance[act],
        );
      });

    for (const headDim of [128, 64, 30])
      test(`vt_head_rms_norm in ${act} (head_dim ${headDim})`, () => {
        const numTokens = 3;
        const numHeads = 4;
        const rowStride = (numHeads + 2 * 2) * headDim;
        const x = rounded(randomValues(numTokens * rowStride, 44, 2), act);
        const weight = rounded(randomValues(headDim, 45), act);
        const address = device.upload(x, act);
        const ran = device.ranWithHalfActivations("vt_head_rms_norm", () =>
          backend.headRmsNorm({
            x: address,
            weight: device.upload(weight, act),
            numTokens,
            numHeads,
            headDim,
            rowStride,
            eps: 1e-6,
            actDtype: act,
            weightDtype: act,
          }),
        );
        if (!ran) return;
        const expected = ref.headRmsNorm(x, weight, { numTokens, numHeads, rowStride, eps: 1e-6 });
        expectClose(device.download(address, x.length, act), expected, halfTolerance[act]);
      });

    for (const [headDim, rotaryDim] of [
      [128, 128],
      [64, 32],
      [10, 6],
    ] as const)
      test(`vt_rotary_embedding in ${act} (head_dim ${headDim}, rotary_dim ${rotaryDim})`, () => {
        const numTokens = 6;
        const numQHeads = 4;
        const numKvHeads = 2;
        const rowStride = (numQHeads + 2 * numKvHeads) * headDim;
        const positions = [0, 1, 57, 99, 3, 57];
        const qkv = rounded(randomValues(numTokens * rowStride, 46), act);
        const cosSin = ref.ropeCosSinCache(100, rotaryDim, 10000);
        const address = device.upload(qkv, act);
        const kOffset = numQHeads * headDim;
        const ran = device.ranWithHalfActivations("vt_rotary_embedding", () =>
          backend.rotaryEmbedding({
            positions: device.uploadInt32(positions),
            q: address,
            k: offsetAddress(address, kOffset * 2),
            cosSin: device.upload(cosSin),
            numTokens,
            numQHeads,
            numKvHeads,
            headDim,
            rotaryDim,
            rowStride,
            actDtype: act,
          }),
        );
        if (!ran) return;
        const expected = ref.rotaryEmbedding(qkv, positions, cosSin, {
          numHeads: numQHeads,
          headDim,
          rotaryDim,
          rowStride,
        });
        const rotatedK = ref.rotaryEmbedding(expected.subarray(kOffset), positions, cosSin, {
          numHeads: numKvHeads,
          headDim,
          rotaryDim,
          rowStride,
        });
        expected.set(rotatedK, kOffset);
        expectClose(device.download(address, qkv.length, act), expected, halfTolerance[act]);
      });

    for (const d of [2048, 2500])
      test(`vt_gelu_tanh_and_mul in ${act} (d ${d})`, () => {
        const numTokens = 3;
        const x = rounded(randomValues(numTokens * 2 * d, 48, 8), act);
        const out = device.alloc(numTokens * d * 2);
        const ran = device.ranWithHalfActivations("vt_gelu_tanh_and_mul", () =>
          backend.geluTanhAndMul({ x: device.upload(x, act), out, numTokens, d, actDtype: act }),
        );
        if (ran) expectClose(device.download(out, numTokens * d, act), ref.geluTanhAndMul(x, d), halfTolerance[act]);
      });

    test(`vt_soft_cap in ${act}`, () => {
      const count = 3001;
      const x = rounded(randomValues(count, 49, 60), act);
      const address = device.upload(x, act);
      const ran = device.ranWithHalfActivations("vt_soft_cap", () =>
        backend.softCap({ x: address, count, cap: 30, actDtype: act }),
      );
      if (ran) expectClose(device.download(address, count, act), ref.softCapAll(x, 30), halfTolerance[act]);
    });

    for (const d of [2048, 2500])
      test(`vt_silu_and_mul in ${act} (d ${d})`, () => {
        const numTokens = 3;
        const x = rounded(randomValues(numTokens * 2 * d, 47, 8), act);
        const out = device.alloc(numTokens * d * 2);
        const ran = device.ranWithHalfActivations("vt_silu_and_mul", () =>
          backend.siluAndMul({ x: device.upload(x, act), out, numTokens, d, actDtype: act }),
        );
        if (ran) expectClose(device.download(out, numTokens * d, act), ref.siluAndMul(x, d), halfTolerance[act]);
      });
  }
});

describe("argument errors", () => {
  test("a NULL pointer is an invalid argument naming the op", () => {
    const weight = device.upload(new Float32Array(8));
    expect(() =>
      backend.rmsNorm({
        input: NULL_ADDRESS,
        residual: null,
        weight,
        out: weight,
        numTokens: 1,
        hiddenSize: 8,
        eps: 1e-6,
        actDtype: "f32",
        weightDtype: "f32",
      }),
    ).toThrow(/status 1\): vt_rms_norm: .*NULL/);
  });

  test("bf16 activations are unsupported by the CPU backend, computed by CUDA", () => {
    const values = Float32Array.of(0.5, -1, 2, 3, 1, 1, -2, 0.25);
    const x = device.upload(values, "bf16");
    const out = device.alloc(8);
    const run = () => backend.siluAndMul({ x, out, numTokens: 1, d: 4, actDtype: "bf16" });
    if (backend.name === "cpu") expect(run).toThrow(/status 3\): vt_silu_and_mul: .*bf16/);
    else {
      run();
      expect(device.download(out, 4, "bf16")).toEqual(rounded(ref.siluAndMul(values, 4), "bf16"));
    }
  });

  test("16-bit activations with another weight dtype are unsupported by both backends", () => {
    const buffer = device.upload(new Float32Array(64));
    const ids = device.uploadInt32([0]);
    for (const [actDtype, weightDtype] of [
      ["bf16", "f16"],
      ["f16", "f32"],
      ["bf16", "f32"],
    ] as const) {
      expect(() =>
        backend.embedding({
          tokenIds: ids,
          numTokens: 1,
          table: buffer,
          vocabSize: 4,
          hiddenSize: 8,
          out: buffer,
          weightDtype,
          actDtype,
        }),
      ).toThrow(/status 3\): vt_embedding/);
      expect(() =>
        backend.rmsNorm({
          input: buffer,
          residual: null,
          weight: buffer,
          out: buffer,
          numTokens: 1,
          hiddenSize: 8,
          eps: 1e-6,
          actDtype,
          weightDtype,
        }),
      ).toThrow(/status 3\): vt_rms_norm/);
    }
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
        positions: device.uploadInt32([0]),
        q: x,
        k: x,
        cosSin: x,
        numTokens: 1,
        numQHeads: 1,
        numKvHeads: 1,
        headDim: 16,
        rotaryDim: 32,
        rowStride: 16,
        actDtype: "f32",
      }),
    ).toThrow(/status 1\): vt_rotary_embedding: rotary_dim/);
  });
});
