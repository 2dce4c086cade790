// vt_fill_uniform's values, reproduced bit for bit. The expected bits come from a C transcription
// of the definition in cuda/include/vllm_ts.h (uint32 wrap-around, float arithmetic).

import { describe, expect, test } from "bun:test";
import { fillUniform, uniformHash, uniformValue } from "../../src/model/uniform-hash.ts";

function f32Bits(value: number): number {
  return new Uint32Array(new Float32Array([value]).buffer)[0]!;
}

const CASES = [
  // seed 0, index 0: fmix32(0) = 0, so h = fmix32(0x85EBCA6B) = 0xCB72770F and
  // value = (0xCB7277 / 2^24) * 2 - 1 = 0.58943069...
  { seed: 0, index: 0, scale: 1, hash: 0xcb72770f, bits: 0x3f16e4ee },
  { seed: 0, index: 1, scale: 1, hash: 0x722d283f, bits: 0xbddd2d80 },
  { seed: 42, index: 7, scale: 0.5, hash: 0x00e89c71, bits: 0xbefe2ec8 },
  { seed: 123456789, index: 1000, scale: 0.02, hash: 0x776957a1, bits: 0xbaafe48f },
  { seed: 0xffffffff, index: 5, scale: 3, hash: 0x5f5aa73b, bits: 0xbf43e016 },
];

const HIGH_INDEX_CASES = [
  { seed: 0, index: 2 ** 32, scale: 1, hash: 0x024cdebc, bits: 0xbf7b6644 },
  { seed: 7, index: 2 ** 32 + 3, scale: 0.1, hash: 0x8b5bf7c7, bits: 0x3c1165f3 },
  { seed: 99, index: 12345678901, scale: 0.125, hash: 0x4404ba83, bits: 0xbd6fed18 },
  { seed: 1, index: 2 ** 53 - 1, scale: 1, hash: 0xdedf321b, bits: 0x3f3dbe64 },
];

describe("uniform hash", () => {
  test("matches the C definition for indices below 2^32", () => {
    for (const { seed, index, scale, hash, bits } of CASES) {
      expect(uniformHash(seed, index)).toBe(hash);
      expect(f32Bits(uniformValue(seed, index, scale))).toBe(bits);
    }
  });

  test("splits indices at or above 2^32 into low and high halves as C does", () => {
    for (const { seed, index, scale, hash, bits } of HIGH_INDEX_CASES) {
      expect(uniformHash(seed, index)).toBe(hash);
      expect(f32Bits(uniformValue(seed, index, scale))).toBe(bits);
    }
  });

  test("values are float32 and lie in [-scale, scale)", () => {
    for (let index = 0; index < 2000; index++) {
      const value = uniformValue(3, index, 0.7);
      expect(Math.fround(value)).toBe(value);
      expect(value).toBeGreaterThanOrEqual(-Math.fround(0.7));
      expect(value).toBeLessThan(Math.fround(0.7));
    }
  });

  test("fillUniform fills element i with the value of index startIndex + i", () => {
    const out = new Float32Array(4);
    fillUniform(out, 7, 0.1, 2 ** 32);
    expect(f32Bits(out[3]!)).toBe(0x3c1165f3);
    for (let i = 0; i < out.length; i++) expect(out[i]).toBe(uniformValue(7, 2 ** 32 + i, 0.1));
  });
});
