// Plain TypeScript references of the native ops of cuda/include/vllm_ts.h: straightforward loops
// in f64, rounded to f32 where the native op stores f32. The native tests compare every kernel
// with these, and the reference forward pass is built from them.
import { type DType, roundToDtype } from "../backend/dtype.ts";
import type { RopeFrequencyScaling } from "../backend/ops.ts";
import { uniformValue } from "../model/uniform-hash.ts";

/** Index arrays may come as typed arrays or plain lists. */
export type Indices = Int32Array | readonly number[];

/** out[t, :] = table[tokenIds[t], :] * scale; an id outside the table gives a zero row. */
export function embedding(table: Float32Array, hiddenSize: number, tokenIds: Indices, scale = 1): Float32Array {
  const vocabSize = table.length / hiddenSize;
  const out = new Float32Array(tokenIds.length * hiddenSize);
  for (let t = 0; t < tokenIds.length; t++) {
    const id = tokenIds[t]!;
    if (id < 0 || id >= vocabSize) continue;
    for (let i = 0; i < hiddenSize; i++) out[t * hiddenSize + i] = table[id * hiddenSize + i]! * scale;
  }
  return out;
}

/** x[offset .. offset + n) scaled by weight / sqrt(mean(x^2) + eps), written to out. */
function normalizeSlice(x: Float32Array, out: Float32Array, offset: number, weight: Float32Array, eps: number): void {
  const n = weight.length;
  let sumSquares = 0;
  for (let i = 0; i < n; i++) sumSquares += x[offset + i]! * x[offset + i]!;
  const invRms = 1 / Math.sqrt(sumSquares / n + eps);
  for (let i = 0; i < n; i++) out[offset + i] = x[offset + i]! * invRms * weight[i]!;
}

/**
 * RMSNorm over rows of weight.length, fused with the residual add as vt_rms_norm does:
 * with a residual, the new residual is input + residual (stored in f32) and the norm applies to
 * it; without, to the input. Returns the normalized rows and the new residual (null without).
 */
export function rmsNorm(
  input: Float32Array,
  weight: Float32Array,
  eps: number,
  residual: Float32Array | null = null,
): { out: Float32Array; residual: Float32Array | null } {
  let source = input;
  if (residual) {
    source = new Float32Array(input.length);
    for (let i = 0; i < input.length; i++) source[i] = input[i]! + residual[i]!;
  }
  const out = new Float32Array(input.length);
  for (let offset = 0; offset < input.length; offset += weight.length) normalizeSlice(source, out, offset, weight, eps);
  return { out, residual: residual ? source : null };
}

/**
 * Per-head RMSNorm (Qwen3's q_norm / k_norm): every head of headDim = weight.length values at
 * the start of each row (rows rowStride apart) is normalized; other values are copied unchanged.
 */
export function headRmsNorm(
  x: Float32Array,
  weight: Float32Array,
  a: { numTokens: number; numHeads: number; rowStride: number; eps: number },
): Float32Array {
  const out = x.slice();
  const headDim = weight.length;
  for (let t = 0; t < a.numTokens; t++)
    for (let h = 0; h < a.numHeads; h++) normalizeSlice(x, out, t * a.rowStride + h * headDim, weight, a.eps);
  return out;
}

/** theta^(-2i/rotaryDim) for i < rotaryDim/2, adjusted by the scaling when given. */
export function ropeInverseFrequencies(
  rotaryDim: number,
  theta: number,
  scaling: RopeFrequencyScaling | null = null,
): number[] {
  const inverse: number[] = [];
  const llama3 = scaling?.type === "llama3" ? scaling : null;
  for (let i = 0; i < rotaryDim / 2; i++) {
    let f = theta ** ((-2 * i) / rotaryDim);
    if (scaling?.type === "linear") f = f / scaling.factor;
    if (llama3) {
      const wavelen = (2 * Math.PI) / f;
      const lowFreqWavelen = llama3.originalMaxPosition / llama3.lowFreqFactor;
      const highFreqWavelen = llama3.originalMaxPosition / llama3.highFreqFactor;
      if (wavelen > lowFreqWavelen) f = f / llama3.factor;
      else if (wavelen >= highFreqWavelen) {
        const smooth =
          (llama3.originalMaxPosition / wavelen - llama3.lowFreqFactor) /
          (llama3.highFreqFactor - llama3.lowFreqFactor);
        f = ((1 - smooth) * f) / llama3.factor + smooth * f;
      }
    }
    inverse.push(f);
  }
  return inverse;
}

/** The rotary table [maxPosition, rotaryDim]: cos(p * inv_freq[i]) then sin(p * inv_freq[i]). */
export function ropeCosSinCache(
  maxPosition: number,
  rotaryDim: number,
  theta: number,
  scaling: RopeFrequencyScaling | null = null,
): Float32Array {
  const inverse = ropeInverseFrequencies(rotaryDim, theta, scaling);
  const half = rotaryDim / 2;
  const out = new Float32Array(maxPosition * rotaryDim);
  for (let p = 0; p < maxPosition; p++)
    for (let i = 0; i < half; i++) {
      out[p * rotaryDim + i] = Math.cos(p * inverse[i]!);
      out[p * rotaryDim + half + i] = Math.sin(p * inverse[i]!);
    }
  return out;
}

/**
 * Rotary embedding ("rotate half") of the first rotaryDim values of each of numHeads heads of
 * headDim at the start of every row (rows rowStride apart), at positions[t]. Returns a rotated
 * copy; call it once for q and once for k (a subarray of a fused QKV buffer works).
 */
export function rotaryEmbedding(
  x: Float32Array,
  positions: Indices,
  cosSin: Float32Array,
  a: { numHeads: number; headDim: number; rotaryDim: number; rowStride: number },
): Float32Array {
  const out = x.slice();
  const half = a.rotaryDim / 2;
  for (let t = 0; t < positions.length; t++) {
    const table = positions[t]! * a.rotaryDim;
    for (let h = 0; h < a.numHeads; h++) {
      const base = t * a.rowStride + h * a.headDim;
      for (let i = 0; i < half; i++) {
        const c = cosSin[table + i]!;
        const s = cosSin[table + half + i]!;
        const x1 = x[base + i]!;
        const x2 = x[base + half + i]!;
        out[base + i] = x1 * c - x2 * s;
        out[base + half + i] = x2 * c + x1 * s;
      }
    }
  }
  return out;
}

export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** GELU with the tanh approximation (a Hugging Face config's "gelu_pytorch_tanh"). */
export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

/** out[t, i] = activation(x[t, i]) * x[t, d + i] over rows of 2d (gate, then up). */
function gatedActivation(x: Float32Array, d: number, activation: (gate: number) => number): Float32Array {
  const rows = x.length / (2 * d);
  const out = new Float32Array(rows * d);
  for (let t = 0; t < rows; t++)
    for (let i = 0; i < d; i++) out[t * d + i] = activation(x[t * 2 * d + i]!) * x[t * 2 * d + d + i]!;
  return out;
}

/** vt_silu_and_mul: Llama's SwiGLU. */
export function siluAndMul(x: Float32Array, d: number): Float32Array {
  return gatedActivation(x, d, silu);
}

/** vt_gelu_tanh_and_mul: Gemma's GeGLU. */
export function geluTanhAndMul(x: Float32Array, d: number): Float32Array {
  return gatedActivation(x, d, geluTanh);
}

/** cap * tanh(x / cap): Gemma's soft-capping of attention scores and final logits. */
export function softCap(x: number, cap: number): number {
  return cap * Math.tanh(x / cap);
}

/** vt_soft_cap: every value soft-capped. */
export function softCapAll(x: Float32Array, cap: number): Float32Array {
  return x.map((v) => softCap(v, cap));
}

/** out[i, :] = src[indices[i], :] over rows of rowLength values. */
export function gatherRows(src: Float32Array, rowLength: number, indices: Indices): Float32Array {
  const out = new Float32Array(indices.length * rowLength);
  for (let i = 0; i < indices.length; i++) {
    const row = indices[i]!;
    out.set(src.subarray(row * rowLength, (row + 1) * rowLength), i * rowLength);
  }
  return out;
}

/**
 * Writes the K and V of new tokens into the paged caches in place:
 * cache[slotMapping[t]] = row t (numKvHeads * headDim values at the start of rows rowStride
 * apart), rounded to cacheDtype. A negative slot skips the token. The caches hold f32 values laid
 * out [numBlocks, blockSize, numKvHeads, headDim], so a slot is a row of numKvHeads * headDim.
 */
export function writeKvCache(
  kCache: Float32Array,
  vCache: Float32Array,
  k: Float32Array,
  v: Float32Array,
  slotMapping: Indices,
  a: { numKvHeads: number; headDim: number; rowStride: number; cacheDtype?: DType },
): void {
  const width = a.numKvHeads * a.headDim;
  const dtype = a.cacheDtype ?? "f32";
  for (let t = 0; t < slotMapping.length; t++) {
    const slot = slotMapping[t]!;
    if (slot < 0) continue;
    for (let i = 0; i < width; i++) {
      kCache[slot * width + i] = roundToDtype(k[t * a.rowStride + i]!, dtype);
      vCache[slot * width + i] = roundToDtype(v[t * a.rowStride + i]!, dtype);
    }
  }
}

/**
 * Causal attention of one sequence with contiguous K/V, the definition vt_paged_attention pages:
 *   q: [numQueries, rows qRowStride apart, numQHeads * headDim at the start of each]
 *   k, v: [contextLength, numKvHeads * headDim]; query j sits at position
 *   contextLength - numQueries + j and attends to positions 0..that (only the last
 *   slidingWindow of them when slidingWindow > 0). Scores are soft-capped when softCap > 0.
 *   GQA: query head h reads KV head h / (numQHeads / numKvHeads). Returns
 *   [numQueries, numQHeads * headDim], computed in f64.
 */
export function attention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  a: {
    numQueries: number;
    contextLength: number;
    numQHeads: number;
    numKvHeads: number;
    headDim: number;
    qRowStride?: number;
    scale: number;
    slidingWindow?: number;
    softCap?: number;
  },
): Float32Array {
  const { numQueries, contextLength, numQHeads, numKvHeads, headDim, scale } = a;
  const qRowStride = a.qRowStride ?? numQHeads * headDim;
  const window = a.slidingWindow ?? 0;
  const cap = a.softCap ?? 0;
  const group = numQHeads / numKvHeads;
  const kvWidth = numKvHeads * headDim;
  const out = new Float32Array(numQueries * numQHeads * headDim);
  const scores = new Float64Array(contextLength);
  const sum = new Float64Array(headDim);
  for (let j = 0; j < numQueries; j++) {
    const position = contextLength - numQueries + j;
    const first = window > 0 ? Math.max(0, position - window + 1) : 0;
    for (let h = 0; h < numQHeads; h++) {
      const qBase = j * qRowStride + h * headDim;
      const kvBase = Math.floor(h / group) * headDim;
      let max = -Infinity;
      for (let p = first; p <= position; p++) {
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += q[qBase + d]! * k[p * kvWidth + kvBase + d]!;
        scores[p] = cap > 0 ? softCap(dot * scale, cap) : dot * scale;
        max = Math.max(max, scores[p]!);
      }
      let total = 0;
      sum.fill(0);
      for (let p = first; p <= position; p++) {
        const weight = Math.exp(scores[p]! - max);
        total += weight;
        for (let d = 0; d < headDim; d++) sum[d] += weight * v[p * kvWidth + kvBase + d]!;
      }
      for (let d = 0; d < headDim; d++) out[(j * numQHeads + h) * headDim + d] = sum[d]! / total;
    }
  }
  return out;
}

/**
 * vt_paged_attention by its definition: for each sequence, read its seqLens[s] cached K/V rows
 * through its block table (logical block b in physical block blockTables[s * maxBlocksPerSeq + b])
 * and run `attention` for its query rows queryStartLoc[s] .. queryStartLoc[s+1]-1.
 * Returns [numTokens, numQHeads * headDim].
 */
export function pagedAttention(a: {
  q: Float32Array;
  kCache: Float32Array;
  vCache: Float32Array;
  blockTables: Indices;
  seqLens: Indices;
  queryStartLoc: Indices;
  maxBlocksPerSeq: number;
  numQHeads: number;
  numKvHeads: number;
  headDim: number;
  qRowStride?: number;
  blockSize: number;
  scale: number;
  slidingWindow?: number;
  softCap?: number;
}): Float32Array {
  const qRowStride = a.qRowStride ?? a.numQHeads * a.headDim;
  const kvWidth = a.numKvHeads * a.headDim;
  const numSeqs = a.seqLens.length;
  const numTokens = a.queryStartLoc[numSeqs]!;
  const out = new Float32Array(numTokens * a.numQHeads * a.headDim);
  for (let s = 0; s < numSeqs; s++) {
    const queryStart = a.queryStartLoc[s]!;
    const numQueries = a.queryStartLoc[s + 1]! - queryStart;
    if (numQueries === 0) continue;
    const contextLength = a.seqLens[s]!;
    const k = new Float32Array(contextLength * kvWidth);
    const v = new Float32Array(contextLength * kvWidth);
    for (let p = 0; p < contextLength; p++) {
      const block = a.blockTables[s * a.maxBlocksPerSeq + Math.floor(p / a.blockSize)]!;
      const slot = block * a.blockSize + (p % a.blockSize);
      k.set(a.kCache.subarray(slot * kvWidth, (slot + 1) * kvWidth), p * kvWidth);
      v.set(a.vCache.subarray(slot * kvWidth, (slot + 1) * kvWidth), p * kvWidth);
    }
    const q = a.q.subarray(queryStart * qRowStride, (queryStart + numQueries) * qRowStride);
    const result = attention(q, k, v, { ...a, numQueries, contextLength, qRowStride });
    out.set(result, queryStart * a.numQHeads * a.headDim);
  }
  return out;
}

/**
 * Copies whole blocks in place, as vt_copy_blocks does on bytes: the cache is numPlanes planes
 * planeStride elements apart, each of blocks of blockLength elements; for each (src, dst) pair
 * and plane, block dst = block src.
 */
export function copyBlocks(
  cache: Float32Array | Uint16Array | Uint8Array,
  a: { numPlanes: number; planeStride: number; blockLength: number; blockPairs: Indices },
): void {
  for (let i = 0; i < a.blockPairs.length / 2; i++) {
    const src = a.blockPairs[2 * i]!;
    const dst = a.blockPairs[2 * i + 1]!;
    for (let plane = 0; plane < a.numPlanes; plane++) {
      const base = plane * a.planeStride;
      cache.copyWithin(base + dst * a.blockLength, base + src * a.blockLength, base + (src + 1) * a.blockLength);
    }
  }
}

/** The index of the largest value of each row of vocabSize (the lowest among equal maxima). */
export function argmax(logits: Float32Array, vocabSize: number): Int32Array {
  const rows = logits.length / vocabSize;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let i = 1; i < vocabSize; i++) if (logits[r * vocabSize + i]! > logits[r * vocabSize + best]!) best = i;
    out[r] = best;
  }
  return out;
}

/**
 * log_softmax(logits[r] / temperatures[r]) per row of vocabSize, in f64 then rounded to f32. A
 * missing or non-positive temperature counts as 1.
 */
export function logSoftmax(
  logits: Float32Array,
  vocabSize: number,
  temperatures: Float32Array | null = null,
): Float32Array {
  const rows = logits.length / vocabSize;
  const out = new Float32Array(logits.length);
  for (let r = 0; r < rows; r++) {
    const given = temperatures?.[r] ?? 1;
    const temperature = given > 0 ? given : 1;
    let max = -Infinity;
    for (let i = 0; i < vocabSize; i++) max = Math.max(max, logits[r * vocabSize + i]! / temperature);
    let sum = 0;
    for (let i = 0; i < vocabSize; i++) sum += Math.exp(logits[r * vocabSize + i]! / temperature - max);
    const logSum = Math.log(sum);
    for (let i = 0; i < vocabSize; i++)
      out[r * vocabSize + i] = logits[r * vocabSize + i]! / temperature - max - logSum;
  }
  return out;
}

/**
 * Structured outputs' token bitmask, in place: logits row rowIndices[i] (of vocabSize) keeps token
 * t when bit t % 32 of bitmask[i * wordsPerRow + t / 32] is 1, and gets -Infinity elsewhere.
 */
export function applyTokenBitmask(
  logits: Float32Array,
  vocabSize: number,
  bitmask: Int32Array,
  wordsPerRow: number,
  rowIndices: Indices,
): void {
  for (let i = 0; i < rowIndices.length; i++) {
    const row = rowIndices[i]!;
    for (let t = 0; t < vocabSize; t++) {
      const word = bitmask[i * wordsPerRow + Math.floor(t / 32)]!;
      if (((word >>> (t % 32)) & 1) === 0) logits[row * vocabSize + t] = -Infinity;
    }
  }
}

/** The `count` values vt_fill_uniform writes for (seed, scale), as stored in `dtype`. */
export function fillUniform(count: number, seed: number, scale: number, dtype: DType = "f32"): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = roundToDtype(uniformValue(seed, i, scale), dtype);
  return out;
}
