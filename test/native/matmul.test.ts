// vt_matmul against the TypeScript reference for every weight dtype, with and without bias, on
// shapes that leave remainders in every tile and block of both kernel paths (the dot path below
// 32 rows, the packed path from 32), plus its argument errors.
import { describe, expect, test } from "bun:test";
import { Backend } from "../../src/backend/backend.ts";
import type { DType } from "../../src/backend/dtype.ts";
import { referenceMatmul } from "../../src/reference/matmul.ts";
import { Device, expectClose, randomValues, rounded, useCpuDevice } from "../helpers/native.ts";

const device = await useCpuDevice();
const backend = device.backend;
const weightDtypes: DType[] = ["f32", "f16", "bf16"];

/** Runs vt_matmul on x and w (uniform in [-1, 1)) and checks it against the reference. */
function checkMatmul(on: Device, m: number, n: number, k: number, weightDtype: DType, withBias: boolean, seed: number) {
  const x = randomValues(m * k, seed);
  // The reference sees the very values the kernel reads once w and bias are stored as weightDtype.
  const w = rounded(randomValues(n * k, seed + 1), weightDtype);
  const bias = withBias ? rounded(randomValues(n, seed + 2), weightDtype) : null;
  const out = on.alloc(m * n * 4);
  on.backend.matmul({
    x: on.upload(x), w: on.upload(w, weightDtype), bias: bias ? on.upload(bias, weightDtype) : null, out, m, n, k,
    actDtype: "f32", weightDtype,
  });
  // f32 accumulation of k products of size <= 1 drifts like sqrt(k) roundings of a sum of size
  // ~sqrt(k); any indexing mistake is off by far more.
  expectClose(on.download(out, m * n), referenceMatmul(x, w, bias, m, n, k), { rtol: 0, atol: 1e-5 * Math.sqrt(k) });
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
  ];
  let seed = 100;
  for (const [m, n, k] of shapes)
    for (const weightDtype of weightDtypes) {
      const shapeSeed = (seed += 3);
      test(`matches the reference at m=${m} n=${n} k=${k} (${weightDtype} weights, with and without bias)`, () => {
        checkMatmul(device, m, n, k, weightDtype, true, shapeSeed);
        checkMatmul(device, m, n, k, weightDtype, false, shapeSeed);
      });
    }

  test("splits columns unevenly across an odd number of threads", async () => {
    const threeThreads = new Device(await Backend.open({ device: "cpu", numThreads: 3, libraryPath: process.env.VT_CPU_LIBRARY }));
    try {
      checkMatmul(threeThreads, 5, 1000, 300, "bf16", true, 7);
      checkMatmul(threeThreads, 70, 1000, 300, "f16", true, 8);
    } finally {
      threeThreads.freeAll();
      threeThreads.backend.close();
    }
  });

  test("m = 0 is a no-op that leaves out untouched", () => {
    const out = device.upload(Float32Array.of(42));
    backend.matmul({ x: 0, w: device.upload(randomValues(4, 1)), out, m: 0, n: 2, k: 2, actDtype: "f32", weightDtype: "f32" });
    expect(device.download(out, 1)).toEqual(Float32Array.of(42));
  });

  test("rejects bf16 activations as unsupported on the CPU backend", () => {
    const x = device.upload(randomValues(4, 1), "bf16");
    const w = device.upload(randomValues(4, 2), "bf16");
    const out = device.alloc(8);
    expect(() => backend.matmul({ x, w, out, m: 2, n: 2, k: 2, actDtype: "bf16", weightDtype: "bf16" })).toThrow(
      /status 3\): vt_matmul: .*f32 only/,
    );
  });

  test("rejects a NULL pointer and non-positive sizes as invalid arguments", () => {
    const x = device.upload(randomValues(4, 1));
    const w = device.upload(randomValues(4, 2));
    const out = device.alloc(16);
    expect(() => backend.matmul({ x, w: 0, out, m: 2, n: 2, k: 2, actDtype: "f32", weightDtype: "f32" })).toThrow(
      /status 1\): vt_matmul: .*NULL/,
    );
    expect(() => backend.matmul({ x, w, out, m: 2, n: 0, k: 2, actDtype: "f32", weightDtype: "f32" })).toThrow(
      /status 1\): vt_matmul: .*n > 0/,
    );
    expect(() => backend.matmul({ x, w, out, m: -1, n: 2, k: 2, actDtype: "f32", weightDtype: "f32" })).toThrow(
      /status 1\): vt_matmul: .*m >= 0/,
    );
  });
});
