// The plain reference forward of a Llama-family model (Gemma 2/3 and Phi-3 included), for tests
// only: one sequence, no paging, no batching, no fusion, f64 arithmetic, weights by their Hugging
// Face names. It follows the transformers modeling code step by step so the native forward can
// be checked against it.
import { roundToDtype } from "../backend/dtype.ts";
import { layerRope, layerSlidingWindow, type ModelConfig } from "../model/config.ts";
import { tensorNames } from "../model/weight-names.ts";
import { geluTanh, ropeInverseFrequencies, sigmoid, silu, softCap } from "./ops.ts";

type Weights = Map<string, Float32Array>;

function tensor(weights: Weights, name: string): Float32Array {
  const t = weights.get(name);
  if (!t) throw new Error(`reference forward: missing tensor ${name}`);
  return t;
}

/** The rows of several tensors stacked in order (q, k, v or gate, up; Phi-3 ships them so). */
function stacked(weights: Weights, names: string[]): Float32Array {
  const parts = names.map((name) => tensor(weights, name));
  const out = new Float32Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
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

/** RMSNorm; Gemma's weights are offsets from 1 (x * (1 + w)). */
function rmsNorm(x: Float64Array, weight: Float32Array, config: ModelConfig): Float64Array {
  let sumSquares = 0;
  for (const v of x) sumSquares += v * v;
  const inv = 1 / Math.sqrt(sumSquares / x.length + config.rmsNormEps);
  const offset = config.normWeightsFromOne ? 1 : 0;
  return x.map((v, i) => v * inv * (offset + weight[i]!));
}

/** Rotate-half RoPE on the first 2 * invFreq.length dims of one head, in place. */
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
  const { hiddenSize: h, headDim: d, numHeads: nq, numKvHeads: nkv, vocabSize } = config;
  const group = nq / nkv;
  const embed = tensor(weights, names.embed);
  // Gemma's normalizer is a tensor of the checkpoint's dtype in transformers.
  const embedScale = config.embeddingScale === null ? 1 : roundToDtype(config.embeddingScale, config.dtype);
  let hidden = tokens.map((t) => Float64Array.from(embed.subarray(t * h, (t + 1) * h), (v) => v * embedScale));
  const activation = config.hiddenAct === "gelu_pytorch_tanh" ? geluTanh : silu;

  names.layers.forEach((l, layer) => {
    const { theta, scaling } = layerRope(config, layer);
    const invFreq = ropeInverseFrequencies(config.rotaryDim, theta, scaling);
    const window = layerSlidingWindow(config, layer);
    const qkvWeight = stacked(weights, l.qkv);
    const qkvBias = l.qkvBias.length > 0 ? stacked(weights, l.qkvBias) : null;
    const gateUpWeight = l.experts ? null : stacked(weights, l.gateUp);
    const keys: Float64Array[][] = [];
    const values: Float64Array[][] = [];
    const queries: Float64Array[][] = [];
    hidden.forEach((x, position) => {
      const normed = rmsNorm(x, tensor(weights, l.inputNorm), config);
      const qkv = linear(normed, qkvWeight, qkvBias, (nq + 2 * nkv) * d);
      const heads = (first: number, count: number, norm: string | null) =>
        Array.from({ length: count }, (_, i) => {
          let head: Float64Array = qkv.slice((first + i) * d, (first + i + 1) * d);
          if (norm) head = rmsNorm(head, tensor(weights, norm), config);
          rope(head, position, invFreq);
          return head;
        });
      queries.push(heads(0, nq, l.qNorm));
      keys.push(heads(nq, nkv, l.kNorm));
      values.push(Array.from({ length: nkv }, (_, i) => qkv.slice((nq + nkv + i) * d, (nq + nkv + i + 1) * d)));
    });

    hidden = hidden.map((x, position) => {
      const attention = new Float64Array(nq * d);
      const first = window > 0 ? Math.max(0, position - window + 1) : 0;
      for (let head = 0; head < nq; head++) {
        const kvHead = Math.floor(head / group);
        const query = queries[position]![head]!;
        const scores: number[] = [];
        for (let j = first; j <= position; j++) {
          const key = keys[j]![kvHead]!;
          let dot = 0;
          for (let i = 0; i < d; i++) dot += query[i]! * key[i]!;
          const score = dot * config.attentionScale;
          scores.push(config.attnLogitSoftcapping === null ? score : softCap(score, config.attnLogitSoftcapping));
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
      let attentionOut = linear(attention, tensor(weights, l.o), null, h);
      if (l.attentionOutputNorm) attentionOut = rmsNorm(attentionOut, tensor(weights, l.attentionOutputNorm), config);
      const afterAttention = attentionOut.map((v, i) => v + x[i]!);
      const normed = rmsNorm(afterAttention, tensor(weights, l.mlpInputNorm), config);
      const mlp = (gate: Float32Array, up: Float32Array | null, down: Float32Array, inter: number) => {
        const gateUp = linear(normed, gate, null, up ? inter : 2 * inter);
        const upOut = up ? linear(normed, up, null, inter) : gateUp.subarray(inter);
        const activated = Float64Array.from({ length: inter }, (_, i) => activation(gateUp[i]!) * upOut[i]!);
        return linear(activated, down, null, h);
      };
      let mlpOut: Float64Array;
      if (l.experts) {
        // transformers' sparse MoE block: softmax over the router's logits, the top k, (their
        // weights renormalized), each chosen expert's MLP, weighted and summed.
        const { numExperts, topK, expertIntermediateSize: inter, normTopkProb } = config.moe!;
        const routerLogits = linear(normed, tensor(weights, l.experts.router), null, numExperts);
        const max = Math.max(...routerLogits);
        const exps = Array.from(routerLogits, (v) => Math.exp(v - max));
        const total = exps.reduce((a, b) => a + b, 0);
        const chosen = exps
          .map((_, e) => e)
          .sort((a, b) => routerLogits[b]! - routerLogits[a]! || a - b)
          .slice(0, topK);
        const chosenTotal = chosen.reduce((sum, e) => sum + exps[e]! / total, 0);
        mlpOut = new Float64Array(h);
        for (const e of chosen) {
          const weight = exps[e]! / total / (normTopkProb ? chosenTotal : 1);
          const [gate, up] = [l.experts.gateUp[2 * e]!, l.experts.gateUp[2 * e + 1]!].map((n) => tensor(weights, n));
          const out = mlp(gate!, up!, tensor(weights, l.experts.down[e]!), inter);
          for (let i = 0; i < h; i++) mlpOut[i]! += weight * out[i]!;
        }
        // Qwen2-MoE's shared expert: every token's, scaled by sigmoid of its own gate.
        const shared = l.experts.sharedExpert;
        if (shared) {
          const [gate, up] = shared.gateUp.map((n) => tensor(weights, n));
          const out = mlp(gate!, up!, tensor(weights, shared.down), config.moe!.sharedExpertIntermediateSize!);
          const scale = sigmoid(linear(normed, tensor(weights, shared.gate), null, 1)[0]!);
          for (let i = 0; i < h; i++) mlpOut[i]! += scale * out[i]!;
        }
      } else {
        mlpOut = mlp(gateUpWeight!, null, tensor(weights, l.down!), config.intermediateSize);
      }
      if (l.mlpOutputNorm) mlpOut = rmsNorm(mlpOut, tensor(weights, l.mlpOutputNorm), config);
      return mlpOut.map((v, i) => v + afterAttention[i]!);
    });
  });

  const logits = new Float32Array(tokens.length * vocabSize);
  const lmHead = tensor(weights, names.lmHead);
  const cap = config.finalLogitSoftcapping;
  hidden.forEach((x, position) => {
    const row = linear(rmsNorm(x, tensor(weights, names.finalNorm), config), lmHead, null, vocabSize);
    logits.set(cap === null ? row : row.map((v) => softCap(v, cap)), position * vocabSize);
  });
  return logits;
}
