// The sampler: one test per sampling parameter proving its effect (statistical ones use fixed seeds
// and generous bounds), exact penalty formulas read back through logprobs, and seeded requests
// drawing the same tokens alone or anywhere in a batch.

import { describe, expect, test } from "bun:test";
import { RequestGenerator } from "../../src/engine/random.ts";
import { type SampledToken, type SamplingRow, sample } from "../../src/engine/sampler.ts";
import { SamplingParams, type SamplingParamsInit } from "../../src/engine/sampling-params.ts";

interface RowOptions {
  prompt?: number[];
  output?: number[];
  eos?: number[];
  seed?: number | null;
}

function makeRow(init: Partial<SamplingParamsInit>, options: RowOptions = {}): SamplingRow {
  const params = new SamplingParams(init);
  return {
    params,
    promptTokenIds: options.prompt ?? [],
    outputTokenIds: options.output ?? [],
    generator: new RequestGenerator(options.seed === undefined ? (params.seed ?? 0) : options.seed),
    eosTokenIds: options.eos ?? [],
  };
}

function sampleOne(logits: number[], row: SamplingRow): SampledToken {
  return sample(Float32Array.from(logits), logits.length, [row])[0]!;
}

/** How often each token comes out of `draws` steps of one request (one generator throughout). */
function frequencies(
  logits: number[],
  init: Partial<SamplingParamsInit>,
  draws = 4000,
  options: RowOptions = {},
): number[] {
  const row = makeRow(init, { seed: 1234, ...options });
  const counts = new Array<number>(logits.length).fill(0);
  const values = Float32Array.from(logits);
  for (let i = 0; i < draws; i++) counts[sample(values, logits.length, [row])[0]!.tokenId]!++;
  return counts.map((count) => count / draws);
}

function logSoftmax(logits: number[]): number[] {
  const max = Math.max(...logits);
  const logNormalizer = max + Math.log(logits.reduce((sum, logit) => sum + Math.exp(logit - max), 0));
  return logits.map((logit) => logit - logNormalizer);
}

const softmax = (logits: number[]) => logSoftmax(logits).map(Math.exp);

/** The processed distribution as the sampler reports it: every token's logprob, by token id. */
function reportedLogprobs(logits: number[], init: Partial<SamplingParamsInit>, options: RowOptions = {}): number[] {
  const token = sampleOne(logits, makeRow({ temperature: 0, logprobs: logits.length, ...init }, options));
  const byId = new Array<number>(logits.length);
  for (const entry of token.logprobs!.top) byId[entry.tokenId] = entry.logprob;
  return byId;
}

/** Normal-ish logits from a seeded generator, so large-vocabulary tests are reproducible. */
function randomLogits(vocabSize: number, seed: number, spread = 3): number[] {
  const generator = new RequestGenerator(seed);
  return Array.from({ length: vocabSize }, () => {
    let sum = 0;
    for (let i = 0; i < 4; i++) sum += generator.nextFloat() - 0.5;
    return sum * spread;
  });
}

/** One draw each from `count` requests seeded 0..count-1, all over the same logits, in one batch. */
function sampleSeeds(logits: number[], init: Partial<SamplingParamsInit>, count: number): number[] {
  const batch = new Float32Array(logits.length * count);
  for (let r = 0; r < count; r++) batch.set(logits, r * logits.length);
  const rows = Array.from({ length: count }, (_, seed) => makeRow(init, { seed }));
  return sample(batch, logits.length, rows).map((token) => token.tokenId);
}

/** Token ids ordered by logit, best first: the full sort the sampler avoids, as a reference. */
const byLogitDescending = (logits: number[]) =>
  logits.map((_, id) => id).sort((a, b) => logits[b]! - logits[a]! || a - b);

/** The top-p nucleus by definition: the most likely tokens until their mass reaches p. */
function nucleusBySort(logits: number[], p: number): Set<number> {
  const probabilities = softmax(logits);
  const nucleus = new Set<number>();
  let mass = 0;
  for (const id of byLogitDescending(logits)) {
    if (mass >= p) break;
    nucleus.add(id);
    mass += probabilities[id]!;
  }
  return nucleus;
}

describe("temperature", () => {
  test("0 picks the argmax, the lowest id among ties, whatever the seed", () => {
    const logits = [0.1, 3, -2, 3, 1];
    for (const seed of [0, 1, 99]) expect(sampleOne(logits, makeRow({ temperature: 0, seed })).tokenId).toBe(1);
  });

  test("1 draws from softmax(logits)", () => {
    const logits = [1, 0.5, 0, -1];
    const observed = frequencies(logits, {});
    softmax(logits).forEach((probability, id) => {
      expect(Math.abs(observed[id]! - probability)).toBeLessThan(0.03);
    });
  });

  test("a low temperature concentrates on the top token, a high one spreads over all", () => {
    const logits = [2, 1, 0, -1];
    expect(frequencies(logits, { temperature: 0.2 })[0]).toBeGreaterThan(0.95);
    const hot = frequencies(logits, { temperature: 5 });
    expect(hot[0]).toBeLessThan(0.4);
    for (const frequency of hot) expect(frequency).toBeGreaterThan(0.12);
  });
});

describe("top_k", () => {
  test("1 equals greedy", () => {
    for (let seed = 0; seed < 50; seed++) {
      const logits = randomLogits(300, seed);
      const greedy = sampleOne(logits, makeRow({ temperature: 0 })).tokenId;
      expect(sampleOne(logits, makeRow({ topK: 1, temperature: 1.5, seed })).tokenId).toBe(greedy);
    }
  });

  test("k never picks outside the k most likely tokens, and spreads over them", () => {
    const logits = randomLogits(32000, 7, 1);
    const topSet = new Set(byLogitDescending(logits).slice(0, 40));
    const drawn = new Set(sampleSeeds(logits, { topK: 40, temperature: 2 }, 300));
    for (const tokenId of drawn) expect(topSet.has(tokenId)).toBe(true);
    expect(drawn.size).toBeGreaterThan(30);
  });

  test("keeps every token tied with the k-th", () => {
    expect(new Set(sampleSeeds([3, 2, 2, 1], { topK: 2 }, 300))).toEqual(new Set([0, 1, 2]));
  });
});

describe("top_p", () => {
  // Probabilities 0.5, 0.3, 0.15, 0.05.
  const logits = [0.5, 0.3, 0.15, 0.05].map(Math.log);

  test("keeps the smallest head reaching p, the crossing token included, renormalised", () => {
    const observed = frequencies(logits, { topP: 0.75 });
    expect(observed[2]).toBe(0);
    expect(observed[3]).toBe(0);
    expect(Math.abs(observed[0]! - 0.5 / 0.8)).toBeLessThan(0.03);
  });

  test("a p below the top token's probability keeps the top token alone", () => {
    expect(frequencies(logits, { topP: 0.45 }, 500)[0]).toBe(1);
  });

  test("over a real-size vocabulary draws exactly the nucleus a full sort finds", () => {
    // 16 likely tokens hold 95% of the mass; 32,000 others share the rest.
    const head = [30, 20, 12, 9, 7, 5, 4, 3, 2, 1.5, 1, 0.6, 0.4, 0.25, 0.15, 0.1];
    const tail = randomLogits(32000, 11, 2);
    const tailMass = tail.reduce((sum, logit) => sum + Math.exp(logit), 0);
    const headMass = head.reduce((sum, weight) => sum + weight, 0);
    const scale = (0.95 * tailMass) / (0.05 * headMass);
    const vocab = [...head.map((weight) => Math.log(weight * scale)), ...tail];
    expect(new Set(sampleSeeds(vocab, { topP: 0.8 }, 600))).toEqual(nucleusBySort(vocab, 0.8));
  });

  test("cuts exactly where a full sort does when the cut falls among many near-equal tokens", () => {
    const flat = Array.from({ length: 200 }, (_, id) => ((id * 37) % 200) * 0.001);
    expect(new Set(sampleSeeds(flat, { topP: 0.5 }, 3000))).toEqual(nucleusBySort(flat, 0.5));
  });

  test("keeps every token tied at the cut", () => {
    expect(new Set(sampleSeeds([1, 1, 1, 1], { topP: 0.3 }, 200))).toEqual(new Set([0, 1, 2, 3]));
  });
});

describe("min_p", () => {
  test("cuts the tokens below min_p × the top probability", () => {
    const logits = [0.4, 0.3, 0.2, 0.06, 0.04].map(Math.log);
    const observed = frequencies(logits, { minP: 0.2 });
    expect(observed[3]).toBe(0);
    expect(observed[4]).toBe(0);
    expect(observed[2]).toBeGreaterThan(0.15);
  });

  test("measures against the tempered distribution, as vLLM applies it after temperature", () => {
    // At T = 2 probabilities flatten: 0.06 vs 0.4 becomes √0.06 vs √0.4, a ratio of 0.39 > 0.2.
    const logits = [0.4, 0.3, 0.2, 0.06, 0.04].map(Math.log);
    expect(frequencies(logits, { minP: 0.2, temperature: 2 })[3]).toBeGreaterThan(0.05);
  });
});

describe("repetition_penalty", () => {
  test("divides positive logits and multiplies negative ones of prompt and output tokens, once each", () => {
    const logits = [2, -1, 1.5, 0.5, -0.5];
    const reported = reportedLogprobs(logits, { repetitionPenalty: 1.5 }, { prompt: [0, 0], output: [1, 1, 1] });
    const expected = logSoftmax([2 / 1.5, -1 * 1.5, 1.5, 0.5, -0.5]);
    expected.forEach((logprob, id) => {
      expect(reported[id]).toBeCloseTo(logprob, 5);
    });
  });

  test("lowers a repeated token until another wins", () => {
    const logits = [2, 1.8, 0];
    expect(sampleOne(logits, makeRow({ temperature: 0 }, { output: [0] })).tokenId).toBe(0);
    expect(sampleOne(logits, makeRow({ temperature: 0, repetitionPenalty: 1.2 }, { output: [0] })).tokenId).toBe(1);
  });
});

describe("presence and frequency penalties", () => {
  test("subtract frequency × count + presence from output tokens only", () => {
    const logits = [1, 1, 1, 1, 1, 1];
    const init = { presencePenalty: 0.5, frequencyPenalty: 0.25 };
    const reported = reportedLogprobs(logits, init, { prompt: [4, 4, 4], output: [3, 3, 3, 5] });
    const expected = logSoftmax([1, 1, 1, 1 - 3 * 0.25 - 0.5, 1, 1 - 0.25 - 0.5]);
    expected.forEach((logprob, id) => {
      expect(reported[id]).toBeCloseTo(logprob, 5);
    });
  });

  test("negative penalties encourage repetition", () => {
    const logits = [2, 1.5, 0];
    expect(sampleOne(logits, makeRow({ temperature: 0, presencePenalty: -1 }, { output: [1] })).tokenId).toBe(1);
    expect(sampleOne(logits, makeRow({ temperature: 0, frequencyPenalty: -0.3 }, { output: [1, 1] })).tokenId).toBe(1);
  });
});

describe("logit_bias", () => {
  const logits = [5, 1, 0, -3];

  test("+100 forces a token", () => {
    expect(frequencies(logits, { logitBias: { 3: 100 } }, 300)[3]).toBe(1);
  });

  test("-100 bans a token", () => {
    expect(frequencies(logits, { logitBias: { 0: -100 }, temperature: 0.5 }, 300)[0]).toBe(0);
    expect(sampleOne(logits, makeRow({ temperature: 0, logitBias: { 0: -100 } })).tokenId).toBe(1);
  });

  test("adds exactly its value, before logprobs are taken", () => {
    const reported = reportedLogprobs(logits, { logitBias: { 2: 2.5 } });
    logSoftmax([5, 1, 2.5, -3]).forEach((logprob, id) => {
      expect(reported[id]).toBeCloseTo(logprob, 5);
    });
  });
});

describe("min_tokens", () => {
  const EOS = 0;
  const STOP = 1;
  const logits = [9, 8, 1, 0];
  const greedyAfter = (outputLength: number, init: Partial<SamplingParamsInit> = {}) => {
    const params = { temperature: 0, minTokens: 3, stopTokenIds: [STOP], ...init };
    return sampleOne(logits, makeRow(params, { eos: [EOS], output: new Array(outputLength).fill(3) })).tokenId;
  };

  test("blocks EOS and stop token ids until reached", () => {
    expect(greedyAfter(0)).toBe(2);
    expect(greedyAfter(2)).toBe(2);
    expect(greedyAfter(3)).toBe(EOS);
  });

  test("blocked tokens are never drawn, however likely", () => {
    const observed = frequencies(logits, { minTokens: 5, stopTokenIds: [STOP] }, 300, { eos: [EOS] });
    expect(observed[EOS]).toBe(0);
    expect(observed[STOP]).toBe(0);
  });

  test("with ignoreEos, EOS does not stop the request, so only stop ids are blocked", () => {
    expect(greedyAfter(0, { ignoreEos: true })).toBe(EOS);
    expect(greedyAfter(0, { ignoreEos: true, logitBias: { [EOS]: -100 } })).toBe(2);
  });

  test("blocking shows in the logprobs", () => {
    const token = sampleOne(logits, makeRow({ temperature: 0, minTokens: 1, logprobs: 4 }, { eos: [EOS] }));
    expect(token.logprobs!.top.find((entry) => entry.tokenId === EOS)!.logprob).toBe(-Infinity);
  });
});

describe("logprobs", () => {
  const logits = randomLogits(1000, 5);
  const reference = logSoftmax(logits);

  test("null asks for none", () => {
    expect(sampleOne(logits, makeRow({})).logprobs).toBeNull();
  });

  test("k returns k entries sorted by probability, the chosen token's log-softmax and rank", () => {
    for (let seed = 0; seed < 20; seed++) {
      const token = sampleOne(logits, makeRow({ logprobs: 5, temperature: 1.3 }, { seed }));
      const { logprob, rank, top } = token.logprobs!;
      expect(top.map((entry) => entry.tokenId)).toEqual(byLogitDescending(logits).slice(0, 5));
      top.forEach((entry) => {
        expect(entry.logprob).toBeCloseTo(reference[entry.tokenId]!, 5);
      });
      expect(logprob).toBeCloseTo(reference[token.tokenId]!, 5);
      expect(rank).toBe(byLogitDescending(logits).indexOf(token.tokenId) + 1);
      expect(top.reduce((sum, entry) => sum + Math.exp(entry.logprob), 0)).toBeLessThanOrEqual(1);
    }
  });

  test("0 returns only the chosen token's", () => {
    const token = sampleOne(logits, makeRow({ logprobs: 0, temperature: 0 }));
    expect(token.logprobs).toEqual({ logprob: expect.closeTo(Math.max(...reference), 5), rank: 1, top: [] });
  });

  test("are taken before temperature, top_k and top_p", () => {
    const plain = sampleOne(logits, makeRow({ logprobs: 3, temperature: 0 })).logprobs!;
    const shaped = sampleOne(logits, makeRow({ logprobs: 3, temperature: 0.3, topK: 2, topP: 0.5 })).logprobs!;
    expect(shaped.top).toEqual(plain.top);
  });

  test("ties rank lower token ids first", () => {
    const token = sampleOne([1, 2, 2, 0], makeRow({ temperature: 0, logprobs: 2 }));
    expect(token.logprobs!.top.map((entry) => entry.tokenId)).toEqual([1, 2]);
    expect(token.logprobs!.rank).toBe(2);
  });
});

describe("seeds", () => {
  const STEPS = 12;
  const VOCAB = 64;

  /** `STEPS` steps of a batch; the seeded request of interest sits at `position` among `others`. */
  function run(position: number, others: Partial<SamplingParamsInit>[], seed = 42): number[] {
    const target = makeRow({ temperature: 1.2, topP: 0.9, seed });
    const rows = others.map((init) => makeRow(init, { seed: init.seed ?? null }));
    rows.splice(position, 0, target);
    const tokens: number[] = [];
    for (let step = 0; step < STEPS; step++) {
      const batch = new Float32Array(rows.length * VOCAB);
      // The target's logits depend only on the step; the others' on their slot too.
      rows.forEach((row, r) => {
        batch.set(randomLogits(VOCAB, row === target ? step : 1000 + step * 10 + r, 1), r * VOCAB);
      });
      const sampled = sample(batch, VOCAB, rows);
      tokens.push(sampled[position]!.tokenId);
      rows.forEach((row, r) => {
        (row.outputTokenIds as number[]).push(sampled[r]!.tokenId);
      });
    }
    return tokens;
  }

  test("a seeded request draws the same tokens alone and anywhere in a batch", () => {
    const alone = run(0, []);
    const others = [{}, { temperature: 0 }, { seed: 7, topK: 5 }, { logprobs: 3, temperature: 2 }];
    expect(run(0, others)).toEqual(alone);
    expect(run(2, others)).toEqual(alone);
    expect(run(4, others)).toEqual(alone);
    expect(run(1, others.slice(2))).toEqual(alone);
  });

  test("different seeds draw different tokens", () => {
    expect(run(0, [], 43)).not.toEqual(run(0, [], 42));
  });

  test("a random row draws exactly one number per token, a greedy row none", () => {
    const logits = [1, 1, 1];
    const random = makeRow({}, { seed: 5 });
    const greedy = makeRow({ temperature: 0 }, { seed: 5 });
    sample(Float32Array.from([...logits, ...logits]), 3, [random, greedy]);
    const fresh = new RequestGenerator(5);
    fresh.nextFloat();
    expect(random.generator.nextFloat()).toBe(fresh.nextFloat());
    expect(greedy.generator.nextFloat()).toBe(new RequestGenerator(5).nextFloat());
  });
});

describe("RequestGenerator", () => {
  test("a seed fixes the stream; seeds, negative ones included, give distinct streams", () => {
    const stream = (seed: number) => {
      const generator = new RequestGenerator(seed);
      return Array.from({ length: 5 }, () => generator.nextFloat());
    };
    expect(stream(1)).toEqual(stream(1));
    const streams = [0, 1, -1, 2 ** 32, 2 ** 40 + 1].map((seed) => stream(seed).join());
    expect(new Set(streams).size).toBe(streams.length);
  });

  test("draws are uniform in [0, 1)", () => {
    const generator = new RequestGenerator(null);
    const draws = Array.from({ length: 20000 }, () => generator.nextFloat());
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThan(1);
    const mean = draws.reduce((sum, draw) => sum + draw, 0) / draws.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.01);
    const lowQuarter = draws.filter((draw) => draw < 0.25).length / draws.length;
    expect(Math.abs(lowQuarter - 0.25)).toBeLessThan(0.015);
  });

  test("rejects a seed that is not a safe integer", () => {
    expect(() => new RequestGenerator(1.5)).toThrow("seed must be a safe integer, got 1.5");
  });
});

describe("the batch", () => {
  test("logits are read, never written", () => {
    const logits = Float32Array.from([1, 2, 3, 4]);
    sample(logits, 4, [
      makeRow({ logitBias: { 0: 5 }, repetitionPenalty: 2, minTokens: 1, stopTokenIds: [3] }, { output: [] }),
    ]);
    expect([...logits]).toEqual([1, 2, 3, 4]);
  });

  test("rejects logits whose size is not rows × vocabulary", () => {
    expect(() => sample(new Float32Array(7), 4, [makeRow({}), makeRow({})])).toThrow(
      "logits has 7 values, expected 2 rows × 4",
    );
  });

  test("each row samples from its own logits", () => {
    const logits = Float32Array.from([9, 0, 0, 0, 9, 0, 0, 0, 9]);
    const rows = [0, 1, 2].map(() => makeRow({ temperature: 0 }));
    expect(sample(logits, 3, rows).map((token) => token.tokenId)).toEqual([0, 1, 2]);
  });
});
