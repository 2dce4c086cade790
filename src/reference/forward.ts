// The plain reference forward of a Llama-family model, for tests only: one sequence, no paging,
// no batching, no fusion, f64 arithmetic, weights by their Hugging Face names. It follows the
// transformers modeling code step by step so the native forward can be checked against it.
import type { ModelConfig } from "../model/config.ts";
import { tensorNames } from "../model/weight-names.ts";
import { ropeInverseFrequencies } from "./ops.ts";

type Weights = Map<string, Float32Array>;

function tensor(weights: Weights, name: string): Float32Array {
  const t = weights.get(name);
  if (!t) throw new Error(`reference forward: missing tensor ${name}`);
  return t;
}

/** y[n] = sum_k x[k] * w[n, k] + bias[n] for one row. */
function linear(x: Float64Array, w: Float32Array, bias: Float32Array | null, outFeatures: number): Float64Array {
  const inFeatures = x.length;
  const y = new Float64Array(outFeatures);
  for (let n = 0; n < outFeatures; n++) {
    let sum = bias ? bias[n]! : 0;
    const row = n * inFeatures;
    for (let k = 0; k < inFeatures; k++) sum += x[k]! * w[row + k]!;
    y[n] = sum;
  }
  return y;
}

function rmsNorm(x: Float64Array, weight: Float32Array, eps: number): Float64Array {
  let sumSquares = 0;
  for (const v of x) sumSquares += v * v;
  const inv = 1 / Math.sqrt(sumSquares / x.length + eps);
  return x.map((v, i) => v * inv * weight[i]!);
}

/** Inverse RoPE frequencies, with Llama 3's piecewise rescaling when configured. */
function inverseFrequencies(config: ModelConfig): number[] {
  const s = config.ropeScaling;
  const llama3 = s && {
    factor: s.factor,
    lowFreqFactor: s.lowFreqFactor,
    highFreqFactor: s.highFreqFactor,
    originalMaxPosition: s.originalMaxPositionEmbeddings,
  };
  return ropeInverseFrequencies(config.headDim, config.ropeTheta, llama3);
}

/** Rotate-half RoPE on one head in place. */
function rope(head: Float64Array, position: number, invFreq: number[]): void {
  const half = invFreq.length;
  for (let i = 0; i < half; i++) {
    const angle = position * invFreq[i]!;
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    const x1 = head[i]!;
    const x2 = head[i + half]!;
    head[i] = x1 * c - x2 * s;
    head[i + half] = x2 * c + x1 * s;
  }
}

/** Logits [tokens.length, vocab] for every position of one sequence starting at position 0. */
export function referenceForward(config: ModelConfig, weights: Weights, tokens: number[]): Float32Array {
  const names = tensorNames(config);
  const { hiddenSize: h, headDim: d, numHeads: nq, numKvHeads: nkv, vocabSize, rmsNormEps: eps } = config;
  const group = nq / nkv;
  const invFreq = inverseFrequencies(config);
  const embed = tensor(weights, names.embed);
  let hidden = tokens.map((t) => Float64Array.from(embed.subarray(t * h, (t + 1) * h)));

  for (const l of names.layers) {
    const keys: Float64Array[][] = [];
    const values: Float64Array[][] = [];
    const queries: Float64Array[][] = [];
    hidden.forEach((x, position) => {
      const normed = rmsNorm(x, tensor(weights, l.inputNorm), eps);
      const bias = (name: string | null) => (name ? tensor(weights, name) : null);
      const q = linear(normed, tensor(weights, l.q), bias(l.qBias), nq * d);
      const k = linear(normed, tensor(weights, l.k), bias(l.kBias), nkv * d);
      const v = linear(normed, tensor(weights, l.v), bias(l.vBias), nkv * d);
      const heads = (flat: Float64Array, count: number, norm: string | null) =>
        Array.from({ length: count }, (_, i) => {
          let head: Float64Array = flat.slice(i * d, (i + 1) * d);
          if (norm) head = rmsNorm(head, tensor(weights, norm), eps);
          rope(head, position, invFreq);
          return head;
        });
      queries.push(heads(q, nq, l.qNorm));
      keys.push(heads(k, nkv, l.kNorm));
      values.push(Array.from({ length: nkv }, (_, i) => v.slice(i * d, (i + 1) * d)));
    });

    hidden = hidden.map((x, position) => {
      const attention = new Float64Array(nq * d);
      const first = config.slidingWindow ? Math.max(0, position - config.slidingWindow + 1) : 0;
      for (let head = 0; head < nq; head++) {
        const kvHead = Math.floor(head / group);
        const query = queries[position]![head]!;
        const scores: number[] = [];
        for (let j = first; j <= position; j++) {
          const key = keys[j]![kvHead]!;
          let dot = 0;
          for (let i = 0; i < d; i++) dot += query[i]! * key[i]!;
          scores.push(dot / Math.sqrt(d));
        }
        const max = Math.max(...scores);
        const exp = scores.map((s) => Math.exp(s - max));
        const total = exp.reduce((a, b) => a + b, 0);
        for (let j = first; j <= position; j++) {
          const p = exp[j - first]! / total;
          const value = values[j]![kvHead]!;
          for (let i = 0; i < d; i++) attention[head * d + i]! += p * value[i]!;
        }
      }
      const afterAttention = linear(attention, tensor(weights, l.o), null, h).map((v, i) => v + x[i]!);
      const normed = rmsNorm(afterAttention, tensor(weights, l.postNorm), eps);
      const gate = linear(normed, tensor(weights, l.gate), null, config.intermediateSize);
      const up = linear(normed, tensor(weights, l.up), null, config.intermediateSize);
      const activated = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]!);
      return linear(activated, tensor(weights, l.down), null, h).map((v, i) => v + afterAttention[i]!);
    });
  }

  const logits = new Float32Array(tokens.length * vocabSize);
  const lmHead = tensor(weights, names.lmHead);
  hidden.forEach((x, position) => {
    logits.set(
      linear(rmsNorm(x, tensor(weights, names.finalNorm), eps), lmHead, null, vocabSize),
      position * vocabSize,
    );
  });
  return logits;
}
