// The host sampler, for the rows that need their logits on the host: logit bias, min-tokens
// blocking and penalties (the model runner draws every other row with vt_sample on the device, on
// both backends). Each row of f32 logits becomes its request's next token, in vLLM's order:
// logit bias → min-tokens blocking → penalties → (logprobs) → temperature → min_p → top_k → top_p
// → draw. Rows are independent, so a row's token depends only on its own request.
//
// Cost per row, V = vocabulary size: one argmax pass for greedy; O(V) expected for random sampling
// (max, candidate collection, one exp per surviving candidate, then quickselect and bucket
// threshold searches for top_k and top_p instead of a full O(V log V) sort);
// O(prompt + output) for penalties; O(V) more for logprobs. Scratch buffers are shared across rows
// and calls, so a step allocates only its results.

import type { RequestGenerator } from "./random.ts";
import type { SamplingParams } from "./sampling-params.ts";

export interface SamplingRow {
  params: SamplingParams;
  promptTokenIds: ArrayLike<number>;
  outputTokenIds: ArrayLike<number>;
  generator: RequestGenerator;
  /**
   * The model's end-of-sequence ids. Until `params.minTokens` outputs exist they are banned along
   * with `params.stopTokenIds` (EOS only when it would stop the request, i.e. without ignoreEos).
   */
  eosTokenIds: readonly number[];
}

export interface TopLogprob {
  tokenId: number;
  logprob: number;
}

/**
 * Log-probabilities under the distribution after logit bias, min-tokens blocking and penalties,
 * before temperature, min_p, top_k and top_p: what the model (as steered by the request) believes,
 * independent of how adventurously the request samples.
 */
export interface TokenLogprobs {
  logprob: number;
  /** 1-based; the number of tokens at least as likely as the chosen one (vLLM's definition). */
  rank: number;
  /** `params.logprobs` entries, most likely first, lower token id first on ties. */
  top: TopLogprob[];
}

export interface SampledToken {
  tokenId: number;
  /** Null unless the request asked for logprobs: computing them costs a full pass over the row. */
  logprobs: TokenLogprobs | null;
}

/**
 * The next token of every row of `logits` ([rows.length, vocabSize], row-major). The logits are
 * read, never written. Random rows draw exactly one number from their generator.
 */
export function sample(logits: Float32Array, vocabSize: number, rows: readonly SamplingRow[]): SampledToken[] {
  if (!Number.isSafeInteger(vocabSize) || vocabSize < 1) {
    throw new RangeError(`vocabSize must be a positive integer, got ${vocabSize}`);
  }
  if (logits.length !== rows.length * vocabSize) {
    throw new RangeError(`logits has ${logits.length} values, expected ${rows.length} rows × ${vocabSize}`);
  }
  const workspace = workspaceFor(vocabSize);
  return rows.map((row, r) => sampleRow(row, logits.subarray(r * vocabSize, (r + 1) * vocabSize), workspace));
}

const NUCLEUS_BUCKETS = 2048;
/** In units of temperature: how far below the top logit a token stops mattering (see sampleRandom). */
const NEGLIGIBLE_LOGIT_GAP = 64;

/** Scratch of exactly V entries per array, so an out-of-vocabulary id reads and writes nothing. */
class Workspace {
  readonly logits: Float32Array;
  readonly candidates: Int32Array;
  /** Unnormalised probability by token id, valid for the current candidates only. */
  readonly weights: Float64Array;
  /** Which pass last saw a token, so penalties touch each distinct token once without clearing. */
  readonly stamps: Uint32Array;
  readonly counts: Uint32Array;
  /** Top-p's probability mass per logit bucket, and the tokens of the bucket it must split. */
  readonly bucketMass = new Float64Array(NUCLEUS_BUCKETS);
  readonly spare: Int32Array;
  private epoch = 0;

  constructor(readonly vocabSize: number) {
    this.logits = new Float32Array(vocabSize);
    this.candidates = new Int32Array(vocabSize);
    this.weights = new Float64Array(vocabSize);
    this.stamps = new Uint32Array(vocabSize);
    this.counts = new Uint32Array(vocabSize);
    this.spare = new Int32Array(vocabSize);
  }

  nextEpoch(): number {
    if (this.epoch === 0xffffffff) {
      this.stamps.fill(0);
      this.epoch = 0;
    }
    return ++this.epoch;
  }
}

let cachedWorkspace: Workspace | null = null;

function workspaceFor(vocabSize: number): Workspace {
  if (cachedWorkspace?.vocabSize !== vocabSize) cachedWorkspace = new Workspace(vocabSize);
  return cachedWorkspace;
}

function sampleRow(row: SamplingRow, rowLogits: Float32Array, workspace: Workspace): SampledToken {
  const { params } = row;
  const logits = processLogits(row, rowLogits, workspace);
  const tokenId = params.isGreedy ? argmax(logits) : sampleRandom(logits, params, row.generator.nextFloat(), workspace);
  const logprobs = params.logprobs === null ? null : tokenLogprobs(logits, tokenId, params.logprobs);
  return { tokenId, logprobs };
}

/** Logit bias, min-tokens blocking and penalties; the row itself when none applies (no copy). */
function processLogits(row: SamplingRow, rowLogits: Float32Array, workspace: Workspace): Float32Array {
  const { params } = row;
  const blockStops = row.outputTokenIds.length < params.minTokens;
  const penalized = params.repetitionPenalty !== 1 || params.presencePenalty !== 0 || params.frequencyPenalty !== 0;
  if (params.logitBias.size === 0 && !blockStops && !penalized) return rowLogits;

  const logits = workspace.logits;
  logits.set(rowLogits);
  for (const [tokenId, bias] of params.logitBias) logits[tokenId] += bias;
  if (blockStops) {
    for (const tokenId of params.stopTokenIds) logits[tokenId] = -Infinity;
    if (!params.ignoreEos) for (const tokenId of row.eosTokenIds) logits[tokenId] = -Infinity;
  }
  if (params.repetitionPenalty !== 1) applyRepetitionPenalty(logits, row, workspace);
  if (params.presencePenalty !== 0 || params.frequencyPenalty !== 0) applyOutputPenalties(logits, row, workspace);
  return logits;
}

/**
 * As in vLLM and Hugging Face (CTRL paper): every token seen in the prompt or the output has a
 * positive logit divided by the penalty and a non-positive one multiplied by it, so a penalty > 1
 * always makes it less likely. Applied once per distinct token.
 */
function applyRepetitionPenalty(logits: Float32Array, row: SamplingRow, workspace: Workspace): void {
  const penalty = row.params.repetitionPenalty;
  const epoch = workspace.nextEpoch();
  const stamps = workspace.stamps;
  for (const tokens of [row.promptTokenIds, row.outputTokenIds]) {
    for (let i = 0; i < tokens.length; i++) {
      const tokenId = tokens[i];
      if (stamps[tokenId] === epoch) continue;
      stamps[tokenId] = epoch;
      const logit = logits[tokenId];
      logits[tokenId] = logit > 0 ? logit / penalty : logit * penalty;
    }
  }
}

/**
 * OpenAI's formula, as vLLM applies it, over output tokens only:
 * logit -= frequencyPenalty × count(token in output) + presencePenalty × (count > 0).
 */
function applyOutputPenalties(logits: Float32Array, row: SamplingRow, workspace: Workspace): void {
  const { presencePenalty, frequencyPenalty } = row.params;
  const { stamps, counts } = workspace;
  const tokens = row.outputTokenIds;
  const counting = workspace.nextEpoch();
  for (let i = 0; i < tokens.length; i++) {
    const tokenId = tokens[i];
    if (stamps[tokenId] !== counting) {
      stamps[tokenId] = counting;
      counts[tokenId] = 0;
    }
    counts[tokenId]++;
  }
  const applying = workspace.nextEpoch();
  for (let i = 0; i < tokens.length; i++) {
    const tokenId = tokens[i];
    if (stamps[tokenId] === applying) continue;
    stamps[tokenId] = applying;
    logits[tokenId] -= frequencyPenalty * counts[tokenId] + presencePenalty;
  }
}

/** The most likely token, the lowest id among equals. */
function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/**
 * Temperature, min_p, top_k and top_p, then inverse-CDF sampling with the single uniform `draw`.
 * All three filters keep the tokens whose logit is at least some threshold (temperature does not
 * change the order), so they compose as thresholds; tokens tied at a threshold are all kept.
 */
function sampleRandom(logits: Float32Array, params: SamplingParams, draw: number, workspace: Workspace): number {
  const { candidates, weights } = workspace;
  const max = logits[argmax(logits)];
  // min_p keeps p >= minP·p_max, i.e. (logit - max) / T >= ln(minP). Tokens more than 64·T below
  // the max each weigh < e^-64 of the top one; all of them together hold < 1e-22 of the mass, so
  // dropping them up front changes no double-precision sum, and saves most exps at low T.
  const minLogit = max - params.temperature * Math.min(NEGLIGIBLE_LOGIT_GAP, -Math.log(params.minP));
  let count = 0;
  for (let i = 0; i < logits.length; i++) if (logits[i] >= minLogit) candidates[count++] = i;
  if (count === 0) return argmax(logits); // only for NaN logits

  if (params.topK > 0 && count > params.topK) count = keepTopK(logits, candidates, count, params.topK);

  const inverseTemperature = 1 / params.temperature;
  let total = 0;
  for (let j = 0; j < count; j++) {
    const tokenId = candidates[j];
    const weight = Math.exp((logits[tokenId] - max) * inverseTemperature);
    weights[tokenId] = weight;
    total += weight;
  }
  if (params.topP < 1) {
    count = keepNucleus(logits, max, params.temperature, candidates, count, params.topP * total, workspace);
    total = 0;
    for (let j = 0; j < count; j++) total += weights[candidates[j]];
  }

  const target = draw * total;
  let cumulative = 0;
  for (let j = 0; j < count; j++) {
    cumulative += weights[candidates[j]];
    if (cumulative > target) return candidates[j];
  }
  return candidates[count - 1]; // rounding left the draw just past the last sum
}

/**
 * Reorders candidates[0, count) so its first n entries are those whose logit is at least the k-th
 * largest; returns n (>= k, more on ties). Quickselect: O(count) expected.
 */
function keepTopK(logits: Float32Array, candidates: Int32Array, count: number, k: number): number {
  let low = 0; // [0, low) is known to be above the threshold
  let high = count; // [high, count) is known to be below it
  for (;;) {
    const [greaterEnd, equalEnd] = partitionAroundPivot(logits, candidates, low, high);
    if (greaterEnd >= k) high = greaterEnd;
    else if (equalEnd >= k) return equalEnd;
    else low = equalEnd;
  }
}

/**
 * Top-p as vLLM defines it: keep a token when the probability of all strictly more likely tokens
 * is below p, i.e. the smallest head of the sorted distribution whose mass reaches `target`
 * (p × total). Two sequential passes bucket the candidates by logit and find the bucket where the
 * head's mass crosses the target; only that bucket's tokens are then ordered, by a weighted
 * quickselect. Reorders candidates so the survivors lead; returns how many.
 */
function keepNucleus(
  logits: Float32Array,
  max: number,
  temperature: number,
  candidates: Int32Array,
  count: number,
  target: number,
  workspace: Workspace,
): number {
  const { weights, bucketMass, spare } = workspace;
  // Every candidate lies within NEGLIGIBLE_LOGIT_GAP·T of the max, which the buckets span evenly.
  const scale = NUCLEUS_BUCKETS / (NEGLIGIBLE_LOGIT_GAP * temperature);
  const bucketOf = (logit: number) => Math.min(NUCLEUS_BUCKETS - 1, Math.floor((max - logit) * scale));

  bucketMass.fill(0);
  for (let j = 0; j < count; j++) bucketMass[bucketOf(logits[candidates[j]])] += weights[candidates[j]];
  let massAbove = 0;
  let crossing = 0;
  while (crossing < NUCLEUS_BUCKETS - 1 && massAbove + bucketMass[crossing] < target)
    massAbove += bucketMass[crossing++];

  let kept = 0;
  let undecided = 0;
  for (let j = 0; j < count; j++) {
    const tokenId = candidates[j];
    const bucket = bucketOf(logits[tokenId]);
    if (bucket < crossing) candidates[kept++] = tokenId;
    else if (bucket === crossing) spare[undecided++] = tokenId;
  }
  candidates.set(spare.subarray(0, undecided), kept);
  return kept + keepMassHead(logits, weights, candidates.subarray(kept, kept + undecided), target - massAbove);
}

/**
 * The exact top-p cut within one bucket: a quickselect weighted by probability finds the largest
 * logit whose head (tokens at least that likely) reaches `target`, in O(length) expected.
 */
function keepMassHead(logits: Float32Array, weights: Float64Array, candidates: Int32Array, target: number): number {
  let low = 0;
  let high = candidates.length;
  let massAbove = 0; // of [0, low)
  while (low < high) {
    const [greaterEnd, equalEnd] = partitionAroundPivot(logits, candidates, low, high);
    let greaterMass = 0;
    for (let j = low; j < greaterEnd; j++) greaterMass += weights[candidates[j]];
    let equalMass = 0;
    for (let j = greaterEnd; j < equalEnd; j++) equalMass += weights[candidates[j]];
    if (massAbove + greaterMass >= target) high = greaterEnd;
    else if (massAbove + greaterMass + equalMass >= target) return equalEnd;
    else {
      massAbove += greaterMass + equalMass;
      low = equalEnd;
    }
  }
  return high; // summation order differs from the total's: the whole bucket was a hair short of it
}

/**
 * Three-way partition of candidates[low, high) by logit around a median-of-three pivot, in
 * descending order: [low, greaterEnd) above the pivot, [greaterEnd, equalEnd) equal, the rest below.
 */
function partitionAroundPivot(
  logits: Float32Array,
  candidates: Int32Array,
  low: number,
  high: number,
): [number, number] {
  const pivot = medianOfThree(
    logits[candidates[low]],
    logits[candidates[(low + high) >>> 1]],
    logits[candidates[high - 1]],
  );
  let greaterEnd = low;
  let j = low;
  let lessStart = high;
  while (j < lessStart) {
    const tokenId = candidates[j];
    const logit = logits[tokenId];
    if (logit > pivot) {
      candidates[j++] = candidates[greaterEnd];
      candidates[greaterEnd++] = tokenId;
    } else if (logit < pivot) {
      candidates[j] = candidates[--lessStart];
      candidates[lessStart] = tokenId;
    } else {
      j++;
    }
  }
  return [greaterEnd, lessStart];
}

function medianOfThree(a: number, b: number, c: number): number {
  return Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
}

/** The chosen token's logprob and rank and the `numTop` best tokens of a row of logits (or of
 * log-probabilities: normalizing them again changes nothing). */
export function tokenLogprobs(logits: Float32Array, tokenId: number, numTop: number): TokenLogprobs {
  const max = logits[argmax(logits)];
  const chosen = logits[tokenId];
  let sum = 0;
  let rank = 0;
  for (let i = 0; i < logits.length; i++) {
    const logit = logits[i];
    sum += Math.exp(logit - max);
    if (logit >= chosen) rank++;
  }
  const logNormalizer = max + Math.log(sum);
  const top = topTokens(logits, numTop).map((id) => ({ tokenId: id, logprob: logits[id] - logNormalizer }));
  return { logprob: chosen - logNormalizer, rank, top };
}

/**
 * The `count` (<= 20) highest-logit token ids, best first, lower ids first among equals. An
 * insertion-sorted list: one comparison per token once full, since few tokens beat the last kept.
 */
function topTokens(logits: Float32Array, count: number): number[] {
  const top: number[] = [];
  if (count === 0) return top;
  for (let i = 0; i < logits.length; i++) {
    const logit = logits[i];
    if (top.length === count) {
      if (!(logit > logits[top[count - 1]])) continue;
      top.pop();
    }
    let position = top.length;
    while (position > 0 && logit > logits[top[position - 1]]) position--;
    top.splice(position, 0, i);
  }
  return top;
}
