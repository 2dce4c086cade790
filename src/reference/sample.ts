// Plain TypeScript reference of vt_sample (cuda/include/vllm_ts.h), in f64: per row, greedy
// argmax for a temperature <= 0, else the tempered softmax filtered by min_p, top_k and top_p in
// vLLM's order and an inverse-CDF draw in vocabulary order with the row's uniform.
//
// Every filter keeps the tokens at or above a threshold of the unnormalized weights
//   e_i = exp((l_i - max) / T)   (so the most likely token has e = 1 exactly and p_i = e_i / sum e),
// and the three filters compose to a single threshold: the kept set is {i : e_i >= t}. Choices the
// header leaves open, made the same way by both native backends:
//   - a NaN temperature is greedy too; a NaN logit has probability 0; a row whose maximum is not
//     finite (all -inf, or +inf present) is greedy;
//   - min_p above 1 and top_p <= 0 keep just the most likely tokens (every filter keeps them);
//   - when the running mass never exceeds uniform * total (float rounding, or a uniform >= 1),
//     the last kept token with non-zero probability is drawn.
//
// Float implementations may legitimately draw a different token when a filter decision or the
// uniform lands within rounding of a boundary; sampleCandidates gives the set of tokens a
// correct implementation may draw under a relative tolerance, for tests.

/** The sampling parameters of one row, as vt_sample reads them. */
export interface RowParams {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
}

/** The per-row arrays of a vt_sample call. */
export interface SampleArgs {
  temperatures: Float32Array;
  topK: Int32Array;
  topP: Float32Array;
  minP: Float32Array;
  uniforms: Float32Array;
}

/** The row's argmax as vt_argmax defines it: NaNs never win, the lowest index among ties. */
export function argmaxRow(row: ArrayLike<number>): number {
  let best = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > best) best = row[i]!;
  for (let i = 0; i < row.length; i++) if (row[i] === best) return i;
  return 0;
}

/** Whether the row is drawn greedily (temperature <= 0 or NaN, or a non-finite maximum). */
export function isGreedy(row: ArrayLike<number>, temperature: number): boolean {
  if (!(temperature > 0)) return true;
  let best = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > best) best = row[i]!;
  return !Number.isFinite(best);
}

/** e_i = exp((l_i - max) / T) in f64 (NaN logits give 0); the maximum gets exactly 1. */
export function temperedWeights(row: ArrayLike<number>, temperature: number): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > max) max = row[i]!;
  const e = new Float64Array(row.length);
  for (let i = 0; i < row.length; i++) {
    const w = Math.exp((row[i]! - max) / temperature);
    e[i] = w >= 0 ? Math.min(w, 1) : 0;
  }
  return e;
}

/** The weights sorted from largest to smallest. */
function descending(e: Float64Array): Float64Array {
  return e.slice().sort().reverse();
}

/** The threshold t of the three filters: token i is kept iff e[i] >= t. */
export function keepThreshold(e: Float64Array, p: RowParams): number {
  const sorted = descending(e);
  // min_p: p >= min_p * max(p)  <=>  e >= min_p, since the maximum has e = 1.
  let t = p.minP > 0 ? Math.min(p.minP, 1) : 0;
  // top_k: the k-th largest (tokens tied with it keep the same e, so they stay).
  if (p.topK > 0 && p.topK < e.length) t = Math.max(t, sorted[p.topK - 1]!);
  if (p.topP < 1) {
    // The largest t whose kept mass reaches top_p of the survivors' mass: walking the survivors
    // from the largest, the first value where the running mass reaches the target.
    let mass = 0;
    for (const v of sorted) if (v >= t) mass += v;
    const target = p.topP * mass;
    let running = 0;
    for (const v of sorted) {
      if (v < t) break;
      running += v;
      if (running >= target) {
        t = v;
        break;
      }
    }
  }
  return t;
}

/** The probabilities row r is drawn from: one-hot when greedy, else the renormalized kept mass. */
export function filteredProbabilities(row: ArrayLike<number>, p: RowParams): Float64Array {
  const q = new Float64Array(row.length);
  if (isGreedy(row, p.temperature)) {
    q[argmaxRow(row)] = 1;
    return q;
  }
  const e = temperedWeights(row, p.temperature);
  const t = keepThreshold(e, p);
  let total = 0;
  for (let i = 0; i < e.length; i++) if (e[i]! >= t) total += e[i]!;
  for (let i = 0; i < e.length; i++) if (e[i]! >= t) q[i] = e[i]! / total;
  return q;
}

/** The token one row draws with `uniform` (exactly the header's semantics, in f64). */
export function sampleRow(row: ArrayLike<number>, p: RowParams, uniform: number): number {
  if (isGreedy(row, p.temperature)) return argmaxRow(row);
  const e = temperedWeights(row, p.temperature);
  const t = keepThreshold(e, p);
  let total = 0;
  for (let i = 0; i < e.length; i++) if (e[i]! >= t) total += e[i]!;
  const target = uniform * total;
  let running = 0;
  let last = 0;
  for (let i = 0; i < e.length; i++) {
    if (!(e[i]! >= t && e[i]! > 0)) continue;
    running += e[i]!;
    last = i;
    if (running > target) return i;
  }
  return last;
}

/** The parameters of row r of a call. */
export function rowParams(a: SampleArgs, r: number): RowParams {
  return { temperature: a.temperatures[r]!, topK: a.topK[r]!, topP: a.topP[r]!, minP: a.minP[r]! };
}

/** vt_sample over rows of vocabSize. */
export function sample(logits: Float32Array, vocabSize: number, a: SampleArgs): Int32Array {
  const rows = logits.length / vocabSize;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++)
    out[r] = sampleRow(logits.subarray(r * vocabSize, (r + 1) * vocabSize), rowParams(a, r), a.uniforms[r]!);
  return out;
}

/** How many of `ascending` are >= x (binary search). */
function countAtLeast(ascending: Float64Array, x: number): number {
  let lo = 0;
  let hi = ascending.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ascending[mid]! >= x) hi = mid;
    else lo = mid + 1;
  }
  return ascending.length - lo;
}

/** How many of `ascending` are > x. */
function countAbove(ascending: Float64Array, x: number): number {
  let lo = 0;
  let hi = ascending.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ascending[mid]! > x) hi = mid;
    else lo = mid + 1;
  }
  return ascending.length - lo;
}

/** Sums of the largest values: suffix[j] = sum of ascending[j..]. */
function suffixSums(ascending: Float64Array): Float64Array {
  const suffix = new Float64Array(ascending.length + 1);
  for (let j = ascending.length - 1; j >= 0; j--) suffix[j] = suffix[j + 1]! + ascending[j]!;
  return suffix;
}

/**
 * Every token an implementation computing in floats may draw for this row: each weight may be
 * off by a relative `tolerance`, each mass (the top_p target, the draw's running mass) by
 * `tolerance` of the row's kept mass. Exactly tied logits stay tied (they give identical
 * weights). A token is "surely kept" when every such perturbation keeps it and "possibly kept"
 * when one does; a possibly kept token is a candidate when its span of running mass can contain
 * the draw's target. Usually one token; a few near a boundary.
 */
export function sampleCandidates(row: ArrayLike<number>, p: RowParams, uniform: number, tolerance = 2e-5): number[] {
  if (isGreedy(row, p.temperature)) return [argmaxRow(row)];
  const e = temperedWeights(row, p.temperature);
  const n = e.length;
  const lowFactor = 1 - 2 * tolerance;
  const highFactor = 1 + 2 * tolerance;
  const sure = new Uint8Array(n).fill(1);
  const possible = new Uint8Array(n).fill(1);
  // The most likely tokens (e = 1 exactly, in every implementation) pass every filter.
  const isTop = (i: number) => e[i] === 1;

  if (p.minP > 0) {
    const t = Math.min(p.minP, 1);
    for (let i = 0; i < n; i++) {
      if (!isTop(i) && !(e[i]! >= t * (1 + tolerance))) sure[i] = 0;
      if (!isTop(i) && !(e[i]! >= t * (1 - tolerance))) possible[i] = 0;
    }
  }

  if (p.topK > 0 && p.topK < n) {
    // Kept iff fewer than k tokens weigh more; tokens within tolerance (but not tied) may overtake.
    const ascending = e.slice().sort();
    for (let i = 0; i < n; i++) {
      if (isTop(i)) continue;
      const tied = countAtLeast(ascending, e[i]!) - countAbove(ascending, e[i]!);
      const maybeAbove = countAtLeast(ascending, e[i]! * lowFactor) - tied;
      const surelyAbove = countAbove(ascending, e[i]! * highFactor);
      if (!(maybeAbove < p.topK)) sure[i] = 0;
      if (!(surelyAbove < p.topK)) possible[i] = 0;
    }
  }

  if (p.topP < 1) {
    // Kept iff the survivors weighing more than it hold less than top_p of the survivors' mass.
    const sureValues: number[] = [];
    const possibleValues: number[] = [];
    for (let i = 0; i < n; i++) {
      if (sure[i]) sureValues.push(e[i]!);
      if (possible[i]) possibleValues.push(e[i]!);
    }
    const sureAscending = Float64Array.from(sureValues).sort();
    const possibleAscending = Float64Array.from(possibleValues).sort();
    const sureSuffix = suffixSums(sureAscending);
    const possibleSuffix = suffixSums(possibleAscending);
    const massMin = sureSuffix[0]!;
    const massMax = possibleSuffix[0]!;
    const slack = 2 * tolerance * massMax;
    const massAbove = (ascending: Float64Array, suffix: Float64Array, count: number) =>
      suffix[ascending.length - count]!;
    for (let i = 0; i < n; i++) {
      if (isTop(i)) continue;
      // Heaviest case: every possible survivor that may weigh more (exact ties never do).
      const tiedMass = (countAtLeast(possibleAscending, e[i]!) - countAbove(possibleAscending, e[i]!)) * e[i]!;
      const aboveMax =
        massAbove(possibleAscending, possibleSuffix, countAtLeast(possibleAscending, e[i]! * lowFactor)) - tiedMass;
      const aboveMin = massAbove(sureAscending, sureSuffix, countAbove(sureAscending, e[i]! * highFactor));
      if (!(aboveMax < p.topP * massMin - slack)) sure[i] = 0;
      if (!(aboveMin < p.topP * massMax + slack)) possible[i] = 0;
    }
  }

  let totalMin = 0;
  let totalMax = 0;
  for (let i = 0; i < n; i++) {
    if (sure[i] && possible[i]) totalMin += e[i]!;
    if (possible[i]) totalMax += e[i]!;
  }
  const slack = tolerance * totalMax;
  const targetLow = uniform * totalMin - slack;
  const targetHigh = uniform * totalMax + slack;
  const candidates: number[] = [];
  let before = 0; // surely kept mass before i
  let through = 0; // possibly kept mass up to and including i
  for (let i = 0; i < n; i++) {
    if (!possible[i] || !(e[i]! > 0)) continue;
    through += e[i]!;
    if (before <= targetHigh && through > targetLow) candidates.push(i);
    if (sure[i]) before += e[i]!;
  }
  // A uniform at or above 1 (or within rounding of it) falls back to the last kept token.
  if (candidates.length === 0) {
    for (let i = n - 1; i >= 0; i--)
      if (possible[i] && e[i]! > 0) {
        candidates.push(i);
        break;
      }
  }
  return candidates;
}
