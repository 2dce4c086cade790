// vt_sample: one token per row drawn on the device, checked against src/reference/sample.ts.
// A float implementation may draw another token than the f64 reference only when a filter
// decision or the uniform lands within rounding of a boundary, so random rows are checked with
// the reference's candidate set (usually one token) and hand-made rows keep their uniforms and
// thresholds far from every boundary and expect exact tokens.
import { describe, expect, test } from "bun:test";
import type { DType } from "../../src/backend/dtype.ts";
import { uniformValue } from "../../src/model/uniform-hash.ts";
import * as ref from "../../src/reference/sample.ts";
import { randomValues, rounded, useTestDevice } from "../helpers/native.ts";

const device = await useTestDevice();
const backend = device.backend;
// The larger shapes take seconds on the emulated CUDA library (every thread a fiber).
const SLOW_TEST_MS = 60_000;

type Row = Partial<ref.RowParams> & { uniform?: number };

/** The per-row arrays for `rows` (defaults: temperature 1, every filter off, uniform 0.5). */
function rowArgs(rows: Row[]): ref.SampleArgs {
  return {
    temperatures: Float32Array.from(rows, (r) => r.temperature ?? 1),
    topK: Int32Array.from(rows, (r) => r.topK ?? 0),
    topP: Float32Array.from(rows, (r) => r.topP ?? 1),
    minP: Float32Array.from(rows, (r) => r.minP ?? 0),
    uniforms: Float32Array.from(rows, (r) => r.uniform ?? 0.5),
  };
}

/** `count` uniforms in [0, 1) from the hash of vt_fill_uniform, distinct for each seed. */
function uniforms(count: number, seed: number): number[] {
  return Array.from({ length: count }, (_, i) => Math.fround((uniformValue(seed, i, 1) + 1) / 2));
}

/** The same row `count` times. */
function repeatRow(row: ArrayLike<number>, count: number): Float32Array {
  const out = new Float32Array(row.length * count);
  for (let r = 0; r < count; r++) out.set(Array.from(row), r * row.length);
  return out;
}

/** Logits whose softmax is proportional to `weights`. */
function logitsOf(weights: number[]): Float32Array {
  return Float32Array.from(weights, (w) => (w > 0 ? Math.log(w) : -Infinity));
}

/** Runs vt_sample on the device; logits are stored as actDtype. */
function run(logits: Float32Array, vocabSize: number, a: ref.SampleArgs, actDtype: DType = "f32"): Int32Array {
  const numRows = a.temperatures.length;
  const out = device.alloc(Math.max(numRows, 1) * 4);
  backend.sample({
    logits: device.upload(logits, actDtype),
    numRows,
    vocabSize,
    actDtype,
    temperatures: device.upload(a.temperatures),
    topK: device.uploadInt32(a.topK),
    topP: device.upload(a.topP),
    minP: device.upload(a.minP),
    uniforms: device.upload(a.uniforms),
    out,
  });
  return device.downloadInt32(out, numRows);
}

/**
 * Runs vt_sample and expects every row's token among the reference's candidates (the exact
 * reference token when no boundary is within rounding). Few rows may have more than a handful
 * of candidates, else the check would prove little (a large vocabulary has several tokens
 * within rounding of the draw's target where their probabilities are tiny). `logits` must
 * already hold the values actDtype stores.
 */
function expectReferenceDraws(logits: Float32Array, vocabSize: number, a: ref.SampleArgs, actDtype: DType = "f32") {
  const tokens = run(logits, vocabSize, a, actDtype);
  let ambiguous = 0;
  for (let r = 0; r < tokens.length; r++) {
    const row = logits.subarray(r * vocabSize, (r + 1) * vocabSize);
    const params = ref.rowParams(a, r);
    const exact = ref.sampleRow(row, params, a.uniforms[r]!);
    const candidates = ref.sampleCandidates(row, params, a.uniforms[r]!);
    expect(candidates).toContain(exact);
    if (!candidates.includes(tokens[r]!))
      throw new Error(
        `row ${r} (${JSON.stringify(params)}, uniform ${a.uniforms[r]}): drew ${tokens[r]}, ` +
          `the reference draws ${exact} (candidates ${candidates.join(", ")})`,
      );
    if (candidates.length > 1 + vocabSize / 1000) ambiguous++;
  }
  expect(ambiguous).toBeLessThanOrEqual(1 + tokens.length / 10);
  return tokens;
}

/** The tokens drawn from one row with `count` uniforms spread evenly over [0, 1). */
function drawsOverUniforms(row: Float32Array, params: Row, count: number): Int32Array {
  const grid = Array.from({ length: count }, (_, i) => (i + 0.5) / count);
  const a = rowArgs(grid.map((uniform) => ({ ...params, uniform })));
  return run(repeatRow(row, count), row.length, a);
}

/** The sorted set of tokens drawn from one row over an even grid of uniforms. */
function support(row: Float32Array, params: Row, count = 64): number[] {
  return [...new Set(drawsOverUniforms(row, params, count))].sort((x, y) => x - y);
}

describe("vt_sample: greedy rows", () => {
  test("a temperature <= 0 takes the argmax (lowest index among ties) whatever the filters", () => {
    const logits = Float32Array.of(1, 7, 3, 7, 2, /**/ 4, 4, -1, 4, 0, /**/ -5, -3, -4, -3, -9);
    const a = rowArgs([
      { temperature: 0, uniform: 0.99 },
      { temperature: -1, topK: 1, topP: 0.1, minP: 0.5, uniform: 0.7 },
      { temperature: 0, topK: 3, uniform: 0.01 },
    ]);
    expect(Array.from(run(logits, 5, a))).toEqual([1, 0, 1]);
  });

  test("a tiny temperature is greedy in effect", () => {
    const vocabSize = 1001;
    const logits = randomValues(4 * vocabSize, 71, 8);
    const a = rowArgs([0.1, 0.3, 0.6, 0.95].map((uniform) => ({ temperature: 1e-4, uniform })));
    const argmaxes = [0, 1, 2, 3].map((r) => ref.argmaxRow(logits.subarray(r * vocabSize, (r + 1) * vocabSize)));
    expect(Array.from(expectReferenceDraws(logits, vocabSize, a))).toEqual(argmaxes);
  });
});

describe("vt_sample: filters on hand-made rows", () => {
  // Weights 0.4, 0.2, 0.15, 0.1, 0.1, 0.05 (sum 1) in a shuffled vocabulary order.
  const weights = [0.1, 0.4, 0.05, 0.15, 0.2, 0.1];
  const row = logitsOf(weights);

  test("no filter draws from the whole softmax in vocabulary order", () => {
    // Running mass: 0.1, 0.5, 0.55, 0.7, 0.9, 1.0.
    const uniformsAndTokens: [number, number][] = [
      [0.05, 0],
      [0.3, 1],
      [0.52, 2],
      [0.6, 3],
      [0.8, 4],
      [0.95, 5],
    ];
    const a = rowArgs(uniformsAndTokens.map(([uniform]) => ({ uniform })));
    expect(Array.from(run(repeatRow(row, 6), 6, a))).toEqual(uniformsAndTokens.map(([, t]) => t));
  });

  test("min_p keeps p >= min_p * max(p)", () => {
    // min_p 0.3: threshold 0.12 keeps 0.4, 0.15, 0.2 (tokens 1, 3, 4), mass 0.75.
    expect(support(row, { minP: 0.3 })).toEqual([1, 3, 4]);
    // Running kept mass 0.4, 0.55, 0.75: uniform 0.6 targets 0.45 -> token 3.
    expect(Array.from(run(row, 6, rowArgs([{ minP: 0.3, uniform: 0.6 }])))).toEqual([3]);
    // min_p 1 (and above) keeps only the most likely token.
    expect(support(row, { minP: 1 })).toEqual([1]);
    expect(support(row, { minP: 3 })).toEqual([1]);
  });

  test("top_k keeps the k largest and every token tied with the k-th", () => {
    expect(support(row, { topK: 1 })).toEqual([1]);
    expect(support(row, { topK: 3 })).toEqual([1, 3, 4]);
    // The 4th largest is 0.1, held by tokens 0 and 5: both stay.
    expect(support(row, { topK: 4 })).toEqual([0, 1, 3, 4, 5]);
    const ties = Float32Array.of(3, 1, 2, 2, 0, 2);
    expect(support(ties, { topK: 2 })).toEqual([0, 2, 3, 5]);
  });

  test("top_p keeps the smallest head of the sorted distribution that reaches top_p", () => {
    // Sorted: 0.4 (1), 0.2 (4), 0.15 (3), 0.1 (0, 5), 0.05 (2); head masses 0.4, 0.6, 0.75, 0.95.
    expect(support(row, { topP: 0.3 })).toEqual([1]);
    expect(support(row, { topP: 0.5 })).toEqual([1, 4]);
    expect(support(row, { topP: 0.7 })).toEqual([1, 3, 4]);
    expect(support(row, { topP: 0.8 })).toEqual([0, 1, 3, 4, 5]); // ties at the threshold stay
    expect(support(row, { topP: 0.99 })).toEqual([0, 1, 2, 3, 4, 5]);
    expect(support(row, { topP: 0 })).toEqual([1]);
  });

  test("filters compose in vLLM's order: min_p, then top_k, then top_p over the survivors", () => {
    // min_p 0.2 (threshold 0.08) drops token 2; top_k 4 keeps 0.4, 0.2, 0.15 and the tied 0.1s;
    // top_p 0.6 of the survivors' 0.95 = 0.57: head masses 0.4, 0.6 -> tokens 1, 4.
    expect(support(row, { minP: 0.2, topK: 4, topP: 0.6 })).toEqual([1, 4]);
    // top_p renormalizes over the survivors: top_k 2 leaves 0.4 + 0.2 = 0.6; top_p 0.7 of it
    // (0.42) needs both, top_p 0.6 of it (0.36) only 0.4 (0.6 of the full mass would need both).
    expect(support(row, { topK: 2, topP: 0.7 })).toEqual([1, 4]);
    expect(support(row, { topK: 2, topP: 0.6 })).toEqual([1]);
    // A temperature sharpens before filtering: T = 0.5 squares the weights (0.16, 0.04, ...).
    expect(support(row, { temperature: 0.5, topP: 0.75 })).toEqual([1, 4]);
  });

  test("top_k >= vocabulary, top_p = 1 and min_p = 0 filter nothing", () => {
    const all = [0, 1, 2, 3, 4, 5];
    expect(support(row, { topK: 6 })).toEqual(all);
    expect(support(row, { topK: 1000, topP: 1, minP: 0 })).toEqual(all);
    expect(support(row, { topK: -1, topP: 1.5, minP: -0.5 })).toEqual(all);
  });

  test("a large temperature flattens the distribution", () => {
    // T = 1e4: every weight within 0.03% of the others, so 600 even uniforms give 100 each.
    const draws = drawsOverUniforms(row, { temperature: 1e4 }, 600);
    const counts = new Array(6).fill(0);
    for (const t of draws) counts[t]++;
    for (const c of counts) expect(Math.abs(c - 100)).toBeLessThanOrEqual(1);
  });

  test("-inf and NaN logits are never drawn; a vocabulary of one always gives token 0", () => {
    const masked = Float32Array.of(-Infinity, 0, -Infinity, 0, -Infinity);
    expect(support(masked, {})).toEqual([1, 3]);
    const nan = Float32Array.of(NaN, 0, NaN, 0.5, -1);
    expect(support(nan, { topK: 2 })).toEqual([1, 3]);
    expect(Array.from(run(nan, 5, rowArgs([{ temperature: 0 }])))).toEqual([3]);
    expect(support(Float32Array.of(5), { topK: 3, topP: 0.5 }, 8)).toEqual([0]);
  });
});

describe("vt_sample: random rows against the reference", () => {
  test(
    "each filter alone and combined, temperatures from 0.05 to 10, an odd vocabulary",
    () => {
      const vocabSize = 5003;
      const rows: Row[] = [];
      const settings: Row[] = [
        {},
        { minP: 0.05 },
        { minP: 0.5 },
        { topK: 1 },
        { topK: 20 },
        { topK: 4000 },
        { topP: 0.5 },
        { topP: 0.9 },
        { topP: 0.999 },
        { minP: 0.02, topK: 50, topP: 0.8 },
        { topK: 100, topP: 0.95 },
        { minP: 0.1, topP: 0.7 },
      ];
      const temperatures = [0.05, 0.7, 1, 2.5, 10];
      for (const s of settings) for (const temperature of temperatures) rows.push({ ...s, temperature });
      const u = uniforms(rows.length, 72);
      rows.forEach((r, i) => {
        r.uniform = u[i];
      });
      const logits = randomValues(rows.length * vocabSize, 73, 10);
      expectReferenceDraws(logits, vocabSize, rowArgs(rows));
    },
    SLOW_TEST_MS,
  );

  test(
    "many rows with mixed greedy and sampling parameters",
    () => {
      const vocabSize = 997;
      const numRows = 96;
      const u = uniforms(numRows * 5, 74);
      const rows: Row[] = Array.from({ length: numRows }, (_, r) => ({
        temperature: r % 7 === 0 ? 0 : 0.2 + 2 * u[numRows + r]!,
        topK: r % 3 === 0 ? 0 : 1 + Math.floor(u[2 * numRows + r]! * 300),
        topP: r % 4 === 0 ? 1 : 0.3 + 0.7 * u[3 * numRows + r]!,
        minP: r % 5 < 2 ? 0 : 0.3 * u[4 * numRows + r]!,
        uniform: u[r],
      }));
      const logits = randomValues(numRows * vocabSize, 75, 6);
      expectReferenceDraws(logits, vocabSize, rowArgs(rows));
    },
    SLOW_TEST_MS,
  );

  test(
    "a 151936-token vocabulary",
    () => {
      const vocabSize = 151_936;
      const rows: Row[] = [
        { uniform: 0.37 },
        { topP: 0.9, uniform: 0.61 },
        { topK: 50, topP: 0.95, temperature: 0.7, uniform: 0.83 },
        { minP: 0.1, temperature: 1.3, uniform: 0.12 },
        // Flat: top_p's threshold sits among ~10^4 tokens of similar weight (the GPU's bisection
        // then continues over a band of them held in shared memory).
        { topP: 0.5, uniform: 0.45 },
      ];
      const logits = randomValues(rows.length * vocabSize, 76, 12);
      const flat = logits.subarray(4 * vocabSize);
      flat.set(flat.map((x) => x / 12));
      expectReferenceDraws(logits, vocabSize, rowArgs(rows));
    },
    SLOW_TEST_MS,
  );

  test("rows with many exact ties (logits quantized to a few levels)", () => {
    const vocabSize = 3001;
    const rows: Row[] = [
      { topK: 10 },
      { topK: 600 },
      { topP: 0.3 },
      { topP: 0.8 },
      { minP: 0.4 },
      { topK: 700, topP: 0.6, minP: 0.1 },
    ];
    const u = uniforms(rows.length, 77);
    rows.forEach((r, i) => {
      r.uniform = u[i];
    });
    const logits = randomValues(rows.length * vocabSize, 78, 3).map((x) => Math.round(x * 2) / 2);
    expectReferenceDraws(logits, vocabSize, rowArgs(rows));
  });
});

describe("vt_sample: the distribution drawn", () => {
  const vocabSize = 37;
  const row = randomValues(vocabSize, 79, 3);
  const params: ref.RowParams = { temperature: 0.8, topK: 20, topP: 0.9, minP: 0.03 };
  const q = ref.filteredProbabilities(row, params);

  test(
    "even uniforms draw each kept token in proportion to its filtered probability",
    () => {
      const count = 2048;
      const draws = drawsOverUniforms(row, params, count);
      const counts = new Array(vocabSize).fill(0);
      for (const t of draws) counts[t]++;
      // An interval of length q holds count * q of the even grid up to one point at each end.
      for (let i = 0; i < vocabSize; i++) expect(Math.abs(counts[i] - count * q[i]!)).toBeLessThanOrEqual(2);
      expect(q.filter((x) => x > 0).length).toBeGreaterThan(5);
    },
    SLOW_TEST_MS,
  );

  test(
    "random uniforms pass a chi-square test against the filtered probabilities",
    () => {
      const count = 2048;
      const a = rowArgs(uniforms(count, 80).map((uniform) => ({ ...params, uniform })));
      const draws = run(repeatRow(row, count), vocabSize, a);
      const counts = new Array(vocabSize).fill(0);
      for (const t of draws) counts[t]++;
      let chiSquare = 0;
      let degrees = -1;
      for (let i = 0; i < vocabSize; i++) {
        if (q[i] === 0) {
          expect(counts[i]).toBe(0);
          continue;
        }
        chiSquare += (counts[i] - count * q[i]!) ** 2 / (count * q[i]!);
        degrees++;
      }
      // Far above the 99.9% quantile for these few degrees of freedom; a wrong filter or order
      // gives thousands.
      expect(chiSquare).toBeLessThan(degrees + 6 * Math.sqrt(2 * degrees) + 10);
    },
    SLOW_TEST_MS,
  );
});

describe("vt_sample: activation dtypes", () => {
  const vocabSize = 4099;
  const rows: Row[] = [
    { temperature: 0 },
    {},
    { topK: 40 },
    { topP: 0.85 },
    { minP: 0.05, topK: 200, topP: 0.9, temperature: 0.6 },
  ];
  const u = uniforms(rows.length, 81);
  rows.forEach((r, i) => {
    r.uniform = u[i];
  });
  const logits = randomValues(rows.length * vocabSize, 82, 10);

  for (const dtype of ["bf16", "f16"] as const) {
    if (backend.name === "cuda")
      test(`${dtype} logits draw as the reference does on the stored values`, () => {
        expectReferenceDraws(rounded(logits, dtype), vocabSize, rowArgs(rows), dtype);
      });
    else
      test(`${dtype} logits are unsupported by the CPU backend`, () => {
        expect(() => run(logits, vocabSize, rowArgs(rows), dtype)).toThrow(/status 3\): vt_sample/);
      });
  }
});

describe("vt_sample: arguments", () => {
  const a = rowArgs([{}, {}]);

  function call(overrides: Partial<Parameters<typeof backend.sample>[0]>) {
    const buffers = {
      logits: device.upload(new Float32Array(8)),
      numRows: 2,
      vocabSize: 4,
      actDtype: "f32" as DType,
      temperatures: device.upload(a.temperatures),
      topK: device.uploadInt32(a.topK),
      topP: device.upload(a.topP),
      minP: device.upload(a.minP),
      uniforms: device.upload(a.uniforms),
      out: device.alloc(8),
    };
    backend.sample({ ...buffers, ...overrides });
  }

  test("null arrays, a non-positive vocabulary and a negative row count are invalid", () => {
    for (const name of ["logits", "temperatures", "topK", "topP", "minP", "uniforms", "out"] as const)
      expect(() => call({ [name]: 0 })).toThrow(/status 1\): vt_sample/);
    expect(() => call({ vocabSize: 0 })).toThrow(/status 1\): vt_sample/);
    expect(() => call({ numRows: -1 })).toThrow(/status 1\): vt_sample/);
  });

  test("zero rows do nothing", () => {
    const out = device.uploadInt32([-7]);
    call({ numRows: 0, out });
    expect(Array.from(device.downloadInt32(out, 1))).toEqual([-7]);
  });
});

describe("vt_sample: graphs", () => {
  const vocabSize = 301;
  const logits = randomValues(3 * vocabSize, 83, 4);
  const first = rowArgs([
    { topK: 30, uniform: 0.2 },
    { topP: 0.7, uniform: 0.5 },
    { temperature: 0, uniform: 0.9 },
  ]);
  const second = rowArgs([
    { topK: 5, uniform: 0.9 },
    { minP: 0.2, uniform: 0.1 },
    { temperature: 2, uniform: 0.6 },
  ]);

  function buffers() {
    return {
      logits: device.upload(logits),
      temperatures: device.upload(first.temperatures),
      topK: device.uploadInt32(first.topK),
      topP: device.upload(first.topP),
      minP: device.upload(first.minP),
      uniforms: device.upload(first.uniforms),
      out: device.alloc(12),
    };
  }

  test("a captured draw replays on the parameters' current contents", () => {
    const b = buffers();
    const graph = backend.captureGraph(() => backend.sample({ ...b, numRows: 3, vocabSize, actDtype: "f32" }));
    try {
      graph.launch();
      expect(device.downloadInt32(b.out, 3)).toEqual(ref.sample(logits, vocabSize, first));
      backend.upload(b.temperatures, second.temperatures);
      backend.upload(b.topK, second.topK);
      backend.upload(b.topP, second.topP);
      backend.upload(b.minP, second.minP);
      backend.upload(b.uniforms, second.uniforms);
      graph.launch();
      expect(device.downloadInt32(b.out, 3)).toEqual(ref.sample(logits, vocabSize, second));
    } finally {
      graph.destroy();
    }
  });
});
