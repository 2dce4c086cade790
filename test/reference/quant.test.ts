// The reference of the quantized formats: each block layout read from hand-built blocks (the
// layouts as llama.cpp documents them: which bits of which byte hold each value, scale and min),
// quantize → dequantize staying within each format's step, and, where llama.cpp's library is
// installed, the same values as llama.cpp's own dequantizers on blocks its quantizers wrote.
import { describe, expect, test } from "bun:test";
import { ALL_QUANT_FORMATS, QUANT_FORMATS } from "../../src/backend/weight-format.ts";
import { dequantize, dequantizeBlock, quantize } from "../../src/reference/quant.ts";
import { ggmlDequantize, ggmlQuantize, missingReason } from "../helpers/llama-cpp.ts";
import { randomValues } from "../helpers/native.ts";

/** A block of `bytes` zeros with the given bytes set. */
function block(bytes: number, set: Record<number, number>): Uint8Array {
  const b = new Uint8Array(bytes);
  for (const [at, value] of Object.entries(set)) b[Number(at)] = value;
  return b;
}

describe("block layouts", () => {
  test("Q8_0: an f16 scale, then 32 signed bytes", () => {
    // d = 0.5 (f16 0x3800)
    const y = dequantizeBlock("q8_0", block(34, { 1: 0x38, 2: 3, 3: 0xfc, 33: 127 }));
    expect([y[0], y[1], y[2], y[31]]).toEqual([1.5, -2, 0, 63.5]);
  });

  test("Q4_0: an f16 scale, then 16 bytes: element i in the low nibble of byte i, i + 16 in its high nibble, minus 8", () => {
    // d = 2 (f16 0x4000)
    const y = dequantizeBlock("q4_0", block(18, { 1: 0x40, 2: 0x1f }));
    expect([y[0], y[16], y[1], y[17]]).toEqual([14, -14, -16, -16]);
  });

  // d = 1, dmin = 0.5; sub-block 0: scale 2, min 4 (6 bits each in bytes 0 and 4 of the scales);
  // sub-block 5: scale 35 = 0b10_0011, min 49 = 0b11_0001 (low nibbles in scales byte 9, high bits
  // in the top two bits of bytes 1 and 5).
  const kScales = { 4: 2, 8: 4, 13: 0x13, 5: 0x80, 9: 0xc0 };

  test("Q4_K: d, dmin, 12 bytes of 6-bit scales and mins, 128 bytes of nibbles (sub-blocks 2p and 2p + 1 share 32 bytes)", () => {
    const y = dequantizeBlock("q4_k", block(144, { 1: 0x3c, 3: 0x38, ...kScales, 16: 0x07, [16 + 64 + 1]: 0x90 }));
    expect(y[0]).toBe(1 * 2 * 7 - 0.5 * 4);
    expect(y[161]).toBe(35 * 9 - 0.5 * 49);
    expect(y[1]).toBe(-2);
  });

  test("Q5_K: as Q4_K plus a fifth bit per value in 32 bytes (bit j for sub-block j)", () => {
    const y = dequantizeBlock("q5_k", block(176, { 1: 0x3c, 3: 0x38, ...kScales, 17: 1 << 5, [48 + 64 + 1]: 0x90 }));
    expect(y[161]).toBe(35 * (9 + 16) - 0.5 * 49);
  });

  test("Q4_1: f16 scale and min, then 16 bytes of nibbles as Q4_0's, plus the min", () => {
    // d = 2, m = -0.5 (f16 0xB800)
    const y = dequantizeBlock("q4_1", block(20, { 1: 0x40, 3: 0xb8, 4: 0x1f }));
    expect([y[0], y[16], y[1]]).toEqual([29.5, 1.5, -0.5]);
  });

  test("Q5_0 and Q5_1: a 32-bit word of fifth bits (bit i for element i) before the nibbles", () => {
    // d = 2; element 0: nibble 15 and fifth bit set = 31; element 17: nibble 0, fifth bit set = 16.
    const q50 = dequantizeBlock("q5_0", block(22, { 1: 0x40, 2: 0x01, 4: 0x02, 6: 0x0f }));
    expect([q50[0], q50[17], q50[1]]).toEqual([2 * (31 - 16), 0, 2 * -16]);
    // d = 2, m = -0.5
    const q51 = dequantizeBlock("q5_1", block(24, { 1: 0x40, 3: 0xb8, 4: 0x01, 6: 0x02, 8: 0x0f }));
    expect([q51[0], q51[17], q51[1]]).toEqual([2 * 31 - 0.5, 2 * 16 - 0.5, -0.5]);
  });

  test("Q6_K: 128 bytes of low nibbles, 64 of 2-bit highs, 16 signed scales, then d; values minus 32", () => {
    // d = 0.25 (f16 0x3400); element 244 = 128 + 3 * 32 + 20: low nibble in the high half of
    // byte 64 + 20 + 32, high bits 6-7 of byte 128 + 32 + 20, scale 8 + 1 + 6.
    const y = dequantizeBlock("q6_k", block(210, { 209: 0x34, 116: 0xa0, 180: 0x80, 207: 0xfd }));
    expect(y[244]).toBe(0.25 * -3 * (10 + 32 - 32));
    expect(y[240]).toBe(0.25 * -3 * -32);
    expect(y[0]).toBe(-0);
  });
});

describe.each(ALL_QUANT_FORMATS)("%s", (format) => {
  const { blockElements, blockBytes } = QUANT_FORMATS[format];
  const values = randomValues(blockElements * 16, 5);

  test("quantize then dequantize stays within the format's step", () => {
    const back = dequantize(format, quantize(format, values));
    // The coarsest step: a range of 2 in 15 levels (4-bit formats), plus the 6-bit scales' error.
    const step = {
      q8_0: 1 / 127,
      q4_0: 1 / 7,
      q4_1: 2 / 15,
      q5_0: 1 / 15,
      q5_1: 2 / 31,
      q4_k: 2 / 15,
      q5_k: 2 / 31,
      q6_k: 1 / 31,
    }[format];
    for (let i = 0; i < values.length; i++) expect(Math.abs(back[i]! - values[i]!)).toBeLessThanOrEqual(step);
  });

  test.skipIf(missingReason !== null)("dequantizes llama.cpp's blocks as llama.cpp does", () => {
    const blocks = ggmlQuantize(format, values, blockBytes, blockElements);
    const theirs = ggmlDequantize(format, blocks, values.length);
    const ours = dequantize(format, blocks);
    // llama.cpp's build may fuse a product into the subtraction after it: a rounding apart.
    for (let i = 0; i < values.length; i++)
      expect(Math.abs(ours[i]! - theirs[i]!)).toBeLessThanOrEqual(Math.abs(theirs[i]!) * 2 ** -22 + 1e-30);
    // And llama.cpp reads our blocks as we do.
    const ourBlocks = quantize(format, values);
    const read = ggmlDequantize(format, ourBlocks, values.length);
    const expected = dequantize(format, ourBlocks);
    for (let i = 0; i < values.length; i++)
      expect(Math.abs(read[i]! - expected[i]!)).toBeLessThanOrEqual(Math.abs(expected[i]!) * 2 ** -22 + 1e-30);
  });
});

if (missingReason !== null) console.warn(`skipped the comparisons with llama.cpp: ${missingReason}`);
