// Ops over rows of logits: greedy argmax and temperature-scaled log-softmax (logprobs).
import { describe, expect, test } from "bun:test";
import * as ref from "../../src/reference/ops.ts";
import { expectClose, randomValues, rounded, useTestDevice } from "../helpers/native.ts";

const device = await useTestDevice();
const backend = device.backend;

/**
 * Runs an op with 16-bit logits: on the CUDA backend it must succeed (true: the caller checks its
 * results); on the CPU backend it must fail with status 3 naming the op (false).
 */
describe("vt_argmax", () => {
  test("finds the largest logit of each row of a large vocabulary", () => {
    const vocabSize = 151_936;
    const numRows = 3;
    const logits = randomValues(numRows * vocabSize, 30, 10);
    logits[vocabSize + 123_456] = 50;
    const out = device.alloc(numRows * 4);
    backend.argmax({ logits: device.upload(logits), out, numRows, vocabSize, actDtype: "f32" });
    const indices = device.downloadInt32(out, numRows);
    expect(indices).toEqual(ref.argmax(logits, vocabSize));
    expect(indices[1]).toBe(123_456);
  });

  test("picks the lowest index among equal maxima", () => {
    const logits = Float32Array.of(1, 7, 3, 7, 7, -Infinity, -Infinity, -Infinity, 2, 2, 2, 2);
    const out = device.alloc(12);
    backend.argmax({ logits: device.upload(logits), out, numRows: 3, vocabSize: 4, actDtype: "f32" });
    expect(Array.from(device.downloadInt32(out, 3))).toEqual([1, 0, 0]);
  });

  test("NaN never wins; a row of NaN answers 0", () => {
    const logits = Float32Array.of(NaN, 1, NaN, 3, NaN, NaN, NaN, NaN, -Infinity, NaN, -Infinity, NaN);
    const out = device.alloc(12);
    backend.argmax({ logits: device.upload(logits), out, numRows: 3, vocabSize: 4, actDtype: "f32" });
    expect(Array.from(device.downloadInt32(out, 3))).toEqual([3, 0, 0]);
  });

  // 16-bit logits (CUDA): rounding makes ties common, and the lowest index must still win. Vocab
  // sizes that take 16-byte vectors and one that does not.
  for (const act of ["bf16", "f16"] as const)
    for (const vocabSize of [32_000, 50_257])
      test(`finds the largest ${act} logit, lowest index among ties (vocab ${vocabSize})`, () => {
        const numRows = 3;
        const logits = rounded(randomValues(numRows * vocabSize, 33, 4), act);
        logits[vocabSize + 7777] = 20;
        logits[vocabSize + 30_000] = 20;
        const out = device.alloc(numRows * 4);
        const ran = device.ranWithHalfActivations("vt_argmax", () =>
          backend.argmax({ logits: device.upload(logits, act), out, numRows, vocabSize, actDtype: act }),
        );
        if (!ran) return;
        const indices = device.downloadInt32(out, numRows);
        expect(indices).toEqual(ref.argmax(logits, vocabSize));
        expect(indices[1]).toBe(7777);
      });
});

describe("vt_log_softmax", () => {
  const vocabSize = 32_000;

  test("matches the reference with per-row temperatures (non-positive ones count as 1)", () => {
    const temperatures = Float32Array.of(1, 0.5, 0, 2, -1);
    const numRows = temperatures.length;
    const logits = randomValues(numRows * vocabSize, 31, 20);
    const out = device.alloc(logits.byteLength);
    backend.logSoftmax({
      logits: device.upload(logits),
      temperatures: device.upload(temperatures),
      out,
      numRows,
      vocabSize,
      actDtype: "f32",
    });
    expectClose(device.download(out, logits.length), ref.logSoftmax(logits, vocabSize, temperatures), { atol: 1e-5 });
  });

  test("without temperatures rows are plain log-softmax whose exponentials sum to 1", () => {
    const numRows = 2;
    const logits = randomValues(numRows * vocabSize, 32, 5);
    const out = device.alloc(logits.byteLength);
    backend.logSoftmax({ logits: device.upload(logits), temperatures: null, out, numRows, vocabSize, actDtype: "f32" });
    const actual = device.download(out, logits.length);
    expectClose(actual, ref.logSoftmax(logits, vocabSize), { atol: 1e-5 });
    let total = 0;
    for (let i = 0; i < vocabSize; i++) total += Math.exp(actual[i]!);
    expect(total).toBeCloseTo(1, 5);
  });

  // 16-bit logits (CUDA), the output is f32 as always. Vocab sizes with and without vectors.
  for (const act of ["bf16", "f16"] as const)
    for (const vocabSize of [32_000, 1001])
      test(`${act} logits with per-row temperatures (vocab ${vocabSize})`, () => {
        const temperatures = Float32Array.of(1, 0.5, 0, 2);
        const numRows = temperatures.length;
        const logits = rounded(randomValues(numRows * vocabSize, 34, 20), act);
        const out = device.alloc(numRows * vocabSize * 4);
        const ran = device.ranWithHalfActivations("vt_log_softmax", () =>
          backend.logSoftmax({
            logits: device.upload(logits, act),
            temperatures: device.upload(temperatures),
            out,
            numRows,
            vocabSize,
            actDtype: act,
          }),
        );
        if (ran)
          expectClose(device.download(out, logits.length), ref.logSoftmax(logits, vocabSize, temperatures), {
            atol: 1e-5,
          });
      });

  test("-inf logits get -inf, the rest normalizes over the finite ones", () => {
    const logits = Float32Array.of(-Infinity, 0, Math.log(3), -Infinity);
    const out = device.alloc(16);
    backend.logSoftmax({
      logits: device.upload(logits),
      temperatures: null,
      out,
      numRows: 1,
      vocabSize: 4,
      actDtype: "f32",
    });
    const actual = device.download(out, 4);
    expect([actual[0], actual[3]]).toEqual([-Infinity, -Infinity]);
    expectClose(actual.subarray(1, 3), Float32Array.of(-Math.log(4), Math.log(3 / 4)));
  });
});
