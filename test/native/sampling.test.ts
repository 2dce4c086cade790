// The sampling helpers: greedy argmax and temperature-scaled log-softmax over logits rows.
import { describe, expect, test } from "bun:test";
import * as ref from "../../src/reference/ops.ts";
import { expectClose, randomValues, useCpuDevice } from "../helpers/native.ts";

const device = await useCpuDevice();
const backend = device.backend;

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
});

describe("vt_log_softmax", () => {
  const vocabSize = 32_000;

  test("matches the reference with per-row temperatures (non-positive ones count as 1)", () => {
    const temperatures = Float32Array.of(1, 0.5, 0, 2, -1);
    const numRows = temperatures.length;
    const logits = randomValues(numRows * vocabSize, 31, 20);
    const out = device.alloc(logits.byteLength);
    backend.logSoftmax({
      logits: device.upload(logits), temperatures: device.upload(temperatures), out, numRows, vocabSize, actDtype: "f32",
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

  test("bf16 logits are unsupported by the CPU backend", () => {
    const logits = device.upload(new Float32Array(4));
    expect(() =>
      backend.logSoftmax({ logits, temperatures: null, out: logits, numRows: 1, vocabSize: 4, actDtype: "bf16" }),
    ).toThrow(/status 3\): vt_log_softmax/);
  });
});
