// vt_matmul against the TypeScript reference for every weight dtype, with and without bias, on
// shapes that leave remainders in every tile and block of both CPU kernel paths (the dot path
// below 32 rows, the packed path from 32) and of the CUDA kernels (gemv for m <= 8 with aligned
// rows, SIMT tiles for f32 activations, tensor-core tiles for 16-bit ones), plus 16-bit
// activations (CUDA computes them, the CPU rejects them with status 3) and argument errors.
import { describe, expect, test } from "bun:test";
import { Backend } from "../../src/backend/backend.ts";
import type { DType } from "../../src/backend/dtype.ts";
import { referenceMatmul } from "../../src/reference/matmul.ts";
import { Device, expectClose, NULL_ADDRESS, randomValues, rounded, useTestDevice } from "../helpers/native.ts";

const device = await useTestDevice();
const backend = device.backend;
const weightDtypes: DType[] = ["f32", "f16", "bf16"];

/** Runs vt_matmul on x and w (uniform in [-1, 1)) and checks it against the reference. */
function checkMatmul(on: Device, m: number, n: number, k: number, weightDtype: DType, withBias: boolean, seed: number) {
  const x = randomValues(m * k, seed);
  // The reference sees the very values the kernel reads once w and bias are stored as weightDtype.
  const w = rounded(randomValues(n * k, seed + 1), weightDtype);
  const bias = withBias ? rounded(randomValues(n, seed + 2), weightDtype) : null;
  const out = on.alloc(m * n * 4);
  // With bf16 weights the CPU multiplies x rounded to bf16, as llama.cpp does; CUDA keeps f32 x.
  const xRead = on.backend.name === "cpu" && weightDtype === "bf16" ? rounded(x, "bf16") : x;
  on.backend.matmul({
    x: on.upload(x),
    w: on.upload(w, weightDtype),
    bias: bias ? on.upload(bias, weightDtype) : null,
    out,
    m,
    n,
    k,
    actDtype: "f32",
    weightDtype,
  });
  // f32 accumulation of k products of size <= 1 drifts like sqrt(k) roundings of a sum of size
  // ~sqrt(k); any indexing mistake is off by far more.
  expectClose(on.download(out, m * n), referenceMatmul(xRead, w, bias, m, n, k), {
    rtol: 0,
    atol: 1e-5 * Math.sqrt(k),
  });
}

const halfDtypes = ["bf16", "f16"] as const;
type HalfDtype = (typeof halfDtypes)[number];
/** Half an ulp relative to the value: the rounding of an output stored in the 16-bit dtype. */
const halfUlp: Record<HalfDtype, number> = { bf16: 2 ** -8, f16: 2 ** -11 };

/** vt_matmul with x, w, bias and out all in `dtype` (the CUDA backend's model path). */
function checkHalfMatmul(m: number, n: number, k: number, dtype: HalfDtype, withBias: boolean, seed: number) {
  const x = rounded(randomValues(m * k, seed), dtype);
  const w = rounded(randomValues(n * k, seed + 1), dtype);
  const bias = withBias ? rounded(randomValues(n, seed + 2), dtype) : null;
  const out = device.alloc(m * n * 2);
  backend.matmul({
    x: device.upload(x, dtype),
    w: device.upload(w, dtype),
    bias: bias ? device.upload(bias, dtype) : null,
    out,
    m,
    n,
    k,
    actDtype: dtype,
    weightDtype: dtype,
  });
  // The f32 sum drifts as in checkMatmul (~sqrt(k) roundings); storing it rounds once more, by at
  // most half an ulp of the result. An indexing or tiling mistake is off by far more.
  expectClose(device.download(out, m * n, dtype), referenceMatmul(x, w, bias, m, n, k), {
    rtol: halfUlp[dtype],
    atol: 1e-5 * Math.sqrt(k),
  });
}

describe("vt_matmul", () => {
  // [m, n, k]: n and k are neither multiples of the 8-column dot tile, the 16-lane vectors, the
  // 48-column panels nor the k blocks of either path (31 x 2100 blocks k in the dot path).
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [1, 5, 63],
    [1, 1000, 257],
    [3, 63, 1000],
    [7, 257, 5],
    [17, 1000, 63],
    [17, 5, 1000],
    [31, 257, 2100],
    [32, 63, 257],
    [130, 1000, 257],
    [130, 257, 1000],
    [40, 100, 1025],
  ];
  let seed = 100;
  for (const [m, n, k] of shapes)
    for (const weightDtype of weightDtypes) {
      seed += 3;
      const shapeSeed = seed;
      test(`matches the reference at m=${m} n=${n} k=${k} (${weightDtype} weights, with and without bias)`, () => {
        checkMatmul(device, m, n, k, weightDtype, true, shapeSeed);
        checkMatmul(device, m, n, k, weightDtype, false, shapeSeed);
      });
    }

  // 16-bit activations and weights of the same dtype. On CUDA: [m, n, k] covering gemv (m <= 8,
  // k a multiple of 8), its fallback to the tiled kernel (k not a multiple of 8), the 64 x 64
  // tensor-core tiles (m <= 64) and the 128 x 128 ones, each with 16-byte and element-wise
  // loads (k % 8), k below, at and off multiples of 16 and of the 32-deep slices, n off the
  // tile widths and off multiples of 8 (element-wise stores). Shapes stay small: the emulation
  // runs every lane of every wmma fragment. On the CPU: the documented status 3.
  const halfShapes: [number, number, number][] = [
    [1, 300, 264],
    [3, 37, 40],
    [8, 129, 200],
    [1, 1, 1],
    [3, 70, 37],
    [8, 20, 12],
    [17, 65, 40],
    [17, 130, 33],
    [64, 64, 64],
    [64, 200, 100],
    [130, 136, 48],
    [130, 150, 72],
    [130, 257, 19],
  ];
  for (const dtype of halfDtypes)
    for (const [m, n, k] of halfShapes) {
      seed += 3;
      const shapeSeed = seed;
      const what = backend.name === "cuda" ? "match the reference" : "are unsupported on the CPU backend";
      for (const withBias of [false, true])
        test(`${dtype} activations and weights ${what} at m=${m} n=${n} k=${k} (${withBias ? "with" : "without"} bias)`, () => {
          const run = () => checkHalfMatmul(m, n, k, dtype, withBias, shapeSeed);
          if (backend.name === "cuda") run();
          else expect(run).toThrow(/status 3\): vt_matmul: .*f32 only/);
        });
    }

  test("splits columns unevenly across an odd number of threads", async () => {
    const threeThreads = new Device(await Backend.open({ device: "cpu", numThreads: 3 }));
    try {
      checkMatmul(threeThreads, 5, 1000, 300, "bf16", true, 7);
      checkMatmul(threeThreads, 70, 1000, 300, "f16", true, 8);
      checkMatmul(threeThreads, 70, 1000, 301, "bf16", true, 9);
    } finally {
      threeThreads.freeAll();
      threeThreads.backend.close();
    }
  });

  test("batch-invariant mode: each row of a 64-row product is bit-identical to that row alone (CPU); CUDA refuses it", () => {
    if (backend.name === "cuda") {
      expect(() => backend.setBatchInvariant(true)).toThrow(/status 3\).*not implemented on CUDA/);
      return;
    }
    // k spans several of the dot path's k blocks at m = 64 and one at m = 1.
    const [m, n, k] = [64, 200, 1500];
    const x = randomValues(m * k, 3);
    backend.setBatchInvariant(true);
    try {
      for (const weightDtype of ["f32", "bf16"] as const) {
        const w = device.upload(rounded(randomValues(n * k, 4), weightDtype), weightDtype);
        const product = (rows: Float32Array, count: number) => {
          const out = device.alloc(count * n * 4);
          backend.matmul({ x: device.upload(rows), w, out, m: count, n, k, actDtype: "f32", weightDtype });
          return device.download(out, count * n);
        };
        const all = product(x, m);
        for (const row of [0, 17, 63])
          expect(product(x.subarray(row * k, (row + 1) * k), 1)).toEqual(all.subarray(row * n, (row + 1) * n));
      }
    } finally {
      backend.setBatchInvariant(false);
    }
  });

  test("m = 0 is a no-op that leaves out untouched", () => {
    const out = device.upload(Float32Array.of(42));
    backend.matmul({
      x: NULL_ADDRESS,
      w: device.upload(randomValues(4, 1)),
      out,
      m: 0,
      n: 2,
      k: 2,
      actDtype: "f32",
      weightDtype: "f32",
    });
    expect(device.download(out, 1)).toEqual(Float32Array.of(42));
  });

  test("16-bit activations with another weight dtype are unsupported by both backends", () => {
    const x = device.upload(randomValues(4, 1), "bf16");
    const out = device.alloc(16);
    for (const weightDtype of ["f16", "f32"] as const) {
      const w = device.upload(randomValues(4, 2), weightDtype);
      expect(() => backend.matmul({ x, w, out, m: 2, n: 2, k: 2, actDtype: "bf16", weightDtype })).toThrow(
        /status 3\): vt_matmul: /,
      );
    }
    expect(() => backend.matmul({ x, w: x, out, m: 2, n: 2, k: 2, actDtype: "f16", weightDtype: "bf16" })).toThrow(
      /status 3\): vt_matmul: /,
    );
  });

  test("rejects a NULL pointer and non-positive sizes as invalid arguments", () => {
    const x = device.upload(randomValues(4, 1));
    const w = device.upload(randomValues(4, 2));
    const out = device.alloc(16);
    expect(() =>
      backend.matmul({ x, w: NULL_ADDRESS, out, m: 2, n: 2, k: 2, actDtype: "f32", weightDtype: "f32" }),
    ).toThrow(/status 1\): vt_matmul: .*NULL/);
    expect(() => backend.matmul({ x, w, out, m: 2, n: 0, k: 2, actDtype: "f32", weightDtype: "f32" })).toThrow(
      /status 1\): vt_matmul: .*n > 0/,
    );
    expect(() => backend.matmul({ x, w, out, m: -1, n: 2, k: 2, actDtype: "f32", weightDtype: "f32" })).toThrow(
      /status 1\): vt_matmul: .*m >= 0/,
    );
  });
});
