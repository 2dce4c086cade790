// Each request's own random stream (xoshiro128**), so a seeded request draws the same numbers
// whether it runs alone or beside any other requests, and no request's draws shift another's.

const TWO_POW_32 = 2 ** 32;
const TWO_POW_53 = 2 ** 53;

/** One step of splitmix32: spreads a seed's bits over a whole word, as xoshiro's authors advise. */
function splitmix32(state: number): [next: number, output: number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [next, (z ^ (z >>> 16)) >>> 0];
}

function randomSeedWords(): number[] {
  return Array.from(crypto.getRandomValues(new Uint32Array(4)));
}

/** The 128-bit state from a 64-bit seed: low and high words each feed a splitmix32 stream. */
function seedWords(seed: number): number[] {
  let low = seed >>> 0;
  let high = Math.floor(seed / TWO_POW_32) | 0;
  const words: number[] = [];
  for (let i = 0; i < 4; i++) {
    let lowOut: number;
    let highOut: number;
    [low, lowOut] = splitmix32(low);
    [high, highOut] = splitmix32(high ^ 0x6a09e667);
    words.push((lowOut ^ Math.imul(highOut, 0x2545f491)) >>> 0);
  }
  return words;
}

export class RequestGenerator {
  private readonly state: Uint32Array;

  /** `seed`: any safe integer (negative included); null draws a seed from the system's entropy. */
  constructor(seed: number | null = null) {
    if (seed !== null && !Number.isSafeInteger(seed)) {
      throw new RangeError(`seed must be a safe integer, got ${seed}`);
    }
    this.state = new Uint32Array(seed === null ? randomSeedWords() : seedWords(seed));
    // xoshiro's only forbidden state; splitmix makes it practically unreachable, but be sure.
    if (this.state.every((word) => word === 0)) this.state[0] = 1;
  }

  /** The next 32 random bits, as an unsigned integer. */
  nextUint32(): number {
    const s = this.state;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** A uniform float in [0, 1) with 53 random bits, so even tokens of tiny probability are reachable. */
  nextFloat(): number {
    const high = this.nextUint32() >>> 5;
    const low = this.nextUint32() >>> 6;
    return (high * 2 ** 26 + low) / TWO_POW_53;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
