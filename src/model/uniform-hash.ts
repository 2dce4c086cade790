// The deterministic "random" values of vt_fill_uniform (cuda/include/vllm_ts.h), bit for bit, so
// random-weight models built in TS match the ones a backend fills on the device.

const TWO_POW_32 = 2 ** 32;

/** murmur3's 32-bit finalizer, in uint32 arithmetic. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The hash of element `index` (an integer below 2^53) under `seed`. */
export function uniformHash(seed: number, index: number): number {
  const lo = index >>> 0;
  const hi = Math.floor(index / TWO_POW_32) >>> 0;
  return fmix32((fmix32(lo ^ seed) + Math.imul(hi, 0x9e3779b9) + 0x85ebca6b) >>> 0);
}

/**
 * The float32 that C computes as `float u = (h >> 8) * (1.0f / 16777216.0f);
 * return (u * 2.0f - 1.0f) * scale;`. Only the last product rounds; fround makes it a float op.
 */
export function uniformValue(seed: number, index: number, scale: number): number {
  const u = (uniformHash(seed, index) >>> 8) * 2 ** -24;
  return Math.fround((u * 2 - 1) * Math.fround(scale));
}

/** out[i] = uniformValue(seed, startIndex + i, scale). */
export function fillUniform(out: Float32Array, seed: number, scale: number, startIndex = 0): void {
  for (let i = 0; i < out.length; i++) out[i] = uniformValue(seed, startIndex + i, scale);
}
