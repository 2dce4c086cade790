// vt_apply_token_bitmask: structured outputs' token bitmask (xgrammar's layout) applied to rows of
// logits in place, checked bit for bit against the reference, masked rows and untouched ones alike.
import { describe, expect, test } from "bun:test";
import { type DType, dtypeBytes, encodeFromF32 } from "../../src/backend/dtype.ts";
import { uniformHash } from "../../src/model/uniform-hash.ts";
import * as ref from "../../src/reference/ops.ts";
import { NULL_ADDRESS, randomValues, rounded, useTestDevice } from "../helpers/native.ts";

const device = await useTestDevice();
const backend = device.backend;

const wordsFor = (vocabSize: number) => Math.ceil(vocabSize / 32);

/** `count` deterministic 32-bit mask words, about half of their bits set, distinct for each seed. */
function randomWords(count: number, seed: number): Int32Array {
  return Int32Array.from({ length: count }, (_, i) => uniformHash(seed, i) | 0);
}

interface MaskCase {
  logits: Float32Array;
  vocabSize: number;
  bitmask: Int32Array;
  wordsPerRow: number;
  rowIndices: number[];
  actDtype: DType;
}

/** Uploads a case; `apply` runs the op on it, `stored` reads the logits back as raw bytes. */
function prepare(c: MaskCase) {
  const logits = device.upload(c.logits, c.actDtype);
  const args = {
    logits,
    numRows: c.logits.length / c.vocabSize,
    vocabSize: c.vocabSize,
    actDtype: c.actDtype,
    bitmask: device.uploadInt32(c.bitmask),
    wordsPerRow: c.wordsPerRow,
    rowIndices: device.uploadInt32(c.rowIndices),
    numMaskedRows: c.rowIndices.length,
  };
  return {
    args,
    apply: () => backend.applyTokenBitmask(args),
    stored: () => backend.download(new Uint8Array(c.logits.length * dtypeBytes(c.actDtype)), logits),
  };
}

/** The reference's result as the device stores it in the case's dtype. */
function expectedBytes(c: MaskCase) {
  const logits = rounded(c.logits, c.actDtype);
  ref.applyTokenBitmask(logits, c.vocabSize, c.bitmask, c.wordsPerRow, c.rowIndices);
  return encodeFromF32(logits, c.actDtype);
}

/** A case of random logits and random masks for `rowIndices` of numRows rows. */
function randomCase(a: {
  numRows: number;
  vocabSize: number;
  wordsPerRow?: number;
  rowIndices: number[];
  actDtype?: DType;
  seed: number;
}): MaskCase {
  const wordsPerRow = a.wordsPerRow ?? wordsFor(a.vocabSize);
  return {
    logits: randomValues(a.numRows * a.vocabSize, a.seed, 10),
    vocabSize: a.vocabSize,
    bitmask: randomWords(a.rowIndices.length * wordsPerRow, a.seed + 1),
    wordsPerRow,
    rowIndices: a.rowIndices,
    actDtype: a.actDtype ?? "f32",
  };
}

describe("vt_apply_token_bitmask", () => {
  // Qwen2.5's tokenizer: 151,665 tokens, a mask as wide as its padded 151,936-row LM head. The
  // random bits past the vocabulary must be ignored, and rows 1 and 3 (row 3 right after masked
  // row 2) stay as they were.
  test("masks the listed rows of a large vocabulary, with a mask wider than the vocabulary", () => {
    const c = randomCase({ numRows: 4, vocabSize: 151_665, wordsPerRow: 151_936 / 32, rowIndices: [2, 0], seed: 70 });
    const run = prepare(c);
    run.apply();
    expect(run.stored()).toEqual(expectedBytes(c));
  });

  test("a batch of many rows, in any order, vocabulary not a multiple of 32", () => {
    const rowIndices = Array.from({ length: 40 }, (_, i) => (i * 17) % 48);
    const c = randomCase({ numRows: 48, vocabSize: 1001, rowIndices, seed: 71 });
    const run = prepare(c);
    run.apply();
    expect(run.stored()).toEqual(expectedBytes(c));
  });

  test("the lowest bit of word w is token 32w", () => {
    const vocabSize = 70;
    const bitmask = Int32Array.of(0b101, 1 << 31, 0b10);
    const c: MaskCase = {
      logits: new Float32Array(vocabSize).fill(1),
      vocabSize,
      bitmask,
      wordsPerRow: 3,
      rowIndices: [0],
      actDtype: "f32",
    };
    const run = prepare(c);
    run.apply();
    const logits = new Float32Array(run.stored().buffer);
    const kept = [...logits.keys()].filter((t) => logits[t] === 1);
    expect(kept).toEqual([0, 2, 63, 65]);
    expect(logits.filter((x) => x === -Infinity).length).toBe(vocabSize - 4);
  });

  test("an all-zero mask makes every logit of its row -inf; an all-ones mask changes nothing", () => {
    const vocabSize = 100;
    const logits = randomValues(2 * vocabSize, 72, 10);
    const words = wordsFor(vocabSize);
    const bitmask = new Int32Array(2 * words).fill(-1, words);
    const run = prepare({ logits, vocabSize, bitmask, wordsPerRow: words, rowIndices: [0, 1], actDtype: "f32" });
    run.apply();
    const stored = run.stored();
    expect(new Float32Array(stored.buffer, 0, vocabSize).every((x) => x === -Infinity)).toBe(true);
    expect(stored.subarray(4 * vocabSize)).toEqual(encodeFromF32(logits, "f32").subarray(4 * vocabSize));
  });

  // Unlisted rows are not even read: NaN payloads, -0 and denormals come back bit for bit.
  test("rows not listed stay bit-identical", () => {
    const vocabSize = 40;
    const patterns = [0x7fc01234, 0xffa00001, 0x80000000, 0x00000001, 0x7f800000, 0x3f800000];
    const bits = Uint32Array.from({ length: 3 * vocabSize }, (_, i) => patterns[i % patterns.length]!);
    const logits = device.alloc(bits.byteLength);
    backend.upload(logits, bits);
    backend.applyTokenBitmask({
      logits,
      numRows: 3,
      vocabSize,
      actDtype: "f32",
      bitmask: device.uploadInt32(new Int32Array(wordsFor(vocabSize))),
      wordsPerRow: wordsFor(vocabSize),
      rowIndices: device.uploadInt32([1]),
      numMaskedRows: 1,
    });
    const after = backend.download(new Uint32Array(bits.length), logits);
    expect(after.subarray(0, vocabSize)).toEqual(bits.subarray(0, vocabSize));
    expect(after.subarray(2 * vocabSize)).toEqual(bits.subarray(2 * vocabSize));
  });

  test("a row listed twice gets the AND of its masks (masking is idempotent)", () => {
    const c = randomCase({ numRows: 3, vocabSize: 300, rowIndices: [1, 2, 1], seed: 73 });
    const run = prepare(c);
    run.apply();
    expect(run.stored()).toEqual(expectedBytes(c));
  });

  // 16-bit logits (CUDA): -inf as the dtype stores it, every other value untouched.
  for (const act of ["bf16", "f16"] as const)
    for (const vocabSize of [32_000, 1001])
      test(`${act} logits (vocab ${vocabSize})`, () => {
        const c = randomCase({ numRows: 3, vocabSize, rowIndices: [2, 0], actDtype: act, seed: 74 });
        const run = prepare(c);
        if (device.ranWithHalfActivations("vt_apply_token_bitmask", run.apply))
          expect(run.stored()).toEqual(expectedBytes(c));
      });

  test("zero masked rows do nothing, even with NULL mask and indices", () => {
    const logits = randomValues(64, 75);
    const address = device.upload(logits);
    backend.applyTokenBitmask({
      logits: address,
      numRows: 2,
      vocabSize: 32,
      actDtype: "f32",
      bitmask: NULL_ADDRESS,
      wordsPerRow: 1,
      rowIndices: NULL_ADDRESS,
      numMaskedRows: 0,
    });
    expect(device.download(address, 64)).toEqual(logits);
  });

  test("a row index outside the logits: rejected by the CPU (which reads indices on the host), skipped on CUDA", () => {
    for (const outside of [4, -1]) {
      const c = randomCase({ numRows: 4, vocabSize: 64, rowIndices: [1, outside], seed: 76 });
      const run = prepare(c);
      if (backend.name === "cpu") {
        expect(run.apply).toThrow(
          `status 1): vt_apply_token_bitmask: row_indices[1] = ${outside} is outside [0, num_rows = 4)`,
        );
      } else {
        run.apply();
        expect(run.stored()).toEqual(expectedBytes({ ...c, rowIndices: [1] }));
      }
    }
  });

  describe("invalid arguments (status 1, the same message on every backend)", () => {
    const c = randomCase({ numRows: 2, vocabSize: 64, rowIndices: [0], seed: 77 });
    const call = (overrides: Partial<ReturnType<typeof prepare>["args"]>) => () =>
      backend.applyTokenBitmask({ ...prepare(c).args, ...overrides });

    test("a mask row shorter than the vocabulary", () => {
      expect(call({ vocabSize: 65 })).toThrow(
        "vt_apply_token_bitmask: words_per_row 2 is shorter than ceil(vocab_size / 32) = 3",
      );
    });

    test("negative counts and an empty vocabulary", () => {
      const message = /status 1\): vt_apply_token_bitmask: need num_rows >= 0, vocab_size > 0 and num_masked_rows >= 0/;
      expect(call({ numRows: -1 })).toThrow(message);
      expect(call({ numMaskedRows: -1 })).toThrow(message);
      expect(call({ vocabSize: 0 })).toThrow(message);
    });

    test("NULL logits, bitmask or row indices", () => {
      for (const name of ["logits", "bitmask", "rowIndices"] as const)
        expect(call({ [name]: NULL_ADDRESS })).toThrow(
          "status 1): vt_apply_token_bitmask: logits, bitmask or row_indices is NULL",
        );
    });
  });
});
