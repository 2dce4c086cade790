// Plain references of the mixture-of-experts ops (vt_moe_route, vt_moe_group, vt_moe_matmul,
// vt_moe_combine with Qwen2-MoE's shared expert): f64 loops, rounded to f32 where the native op stores f32.
import { type Indices, sigmoid } from "./ops.ts";

export interface Routing {
  /** [numTokens, topK]: the chosen experts of each token, best first. */
  expertIds: Int32Array;
  /** [numTokens, topK]: their softmax probabilities (divided by their sum when renormalized). */
  weights: Float32Array;
}

/** Softmax over each token's router logits, then its topK most probable experts (ties: lower id). */
export function moeRoute(logits: Float32Array, numExperts: number, topK: number, renormalize: boolean): Routing {
  const numTokens = logits.length / numExperts;
  const expertIds = new Int32Array(numTokens * topK);
  const weights = new Float32Array(numTokens * topK);
  for (let t = 0; t < numTokens; t++) {
    const row = Array.from(logits.subarray(t * numExperts, (t + 1) * numExperts));
    const max = Math.max(...row);
    const exps = row.map((x) => Math.exp(x - max));
    const sum = exps.reduce((a, b) => a + b, 0);
    // By logit, which orders as the probabilities do and keeps exact ties exact.
    const order = row.map((_, e) => e).sort((a, b) => row[b]! - row[a]! || a - b);
    const chosen = order.slice(0, topK);
    const chosenSum = chosen.reduce((s, e) => s + exps[e]! / sum, 0);
    chosen.forEach((e, j) => {
      expertIds[t * topK + j] = e;
      weights[t * topK + j] = exps[e]! / sum / (renormalize ? chosenSum : 1);
    });
  }
  return { expertIds, weights };
}

export interface ExpertGroups {
  /** Slot ids (token * topK + choice) grouped by expert, ascending within each expert. */
  sortedSlots: Int32Array;
  /** [numExperts + 1]: expert e owns sortedSlots[offsets[e] .. offsets[e + 1]). */
  offsets: Int32Array;
}

/** The slots of each expert, a stable counting sort of the slots by their expert id. */
export function moeGroup(expertIds: Indices, numExperts: number): ExpertGroups {
  const offsets = new Int32Array(numExperts + 1);
  for (let s = 0; s < expertIds.length; s++) offsets[expertIds[s]! + 1]! += 1;
  for (let e = 0; e < numExperts; e++) offsets[e + 1]! += offsets[e]!;
  const next = offsets.slice(0, numExperts);
  const sortedSlots = new Int32Array(expertIds.length);
  for (let s = 0; s < expertIds.length; s++) sortedSlots[next[expertIds[s]!]!++] = s;
  return { sortedSlots, offsets };
}

/**
 * For each slot s of expert e: out[s, :] = x[floor(s / slotsPerXRow), :] · w[e]^T, with w the
 * experts' stacked [numExperts, n, k] matrices. Slots no expert owns are left as they were.
 */
export function moeMatmul(a: {
  x: Float32Array;
  slotsPerXRow: number;
  w: Float32Array;
  groups: ExpertGroups;
  out: Float32Array;
  n: number;
  k: number;
}): Float32Array {
  const { x, slotsPerXRow, w, groups, n, k } = a;
  const out = a.out.slice();
  const numExperts = groups.offsets.length - 1;
  for (let e = 0; e < numExperts; e++) {
    for (let i = groups.offsets[e]!; i < groups.offsets[e + 1]!; i++) {
      const slot = groups.sortedSlots[i]!;
      const row = Math.floor(slot / slotsPerXRow);
      for (let col = 0; col < n; col++) {
        let sum = 0;
        const wRow = (e * n + col) * k;
        for (let j = 0; j < k; j++) sum += x[row * k + j]! * w[wRow + j]!;
        out[slot * n + col] = sum;
      }
    }
  }
  return out;
}

/** Qwen2-MoE's shared expert: its MLP output for every token, and one gate logit per token. */
export interface SharedExpertOutput {
  x: Float32Array;
  gate: Float32Array;
}

/**
 * out[t, :] = sum over j of weights[t, j] * x[t * topK + j, :], plus sigmoid(shared.gate[t]) *
 * shared.x[t, :] when a shared expert is given.
 */
export function moeCombine(
  x: Float32Array,
  weights: Float32Array,
  topK: number,
  d: number,
  shared: SharedExpertOutput | null = null,
): Float32Array {
  const numTokens = weights.length / topK;
  const out = new Float32Array(numTokens * d);
  for (let t = 0; t < numTokens; t++) {
    const gate = shared === null ? 0 : sigmoid(shared.gate[t]!);
    for (let i = 0; i < d; i++) {
      let sum = 0;
      for (let j = 0; j < topK; j++) sum += weights[t * topK + j]! * x[(t * topK + j) * d + i]!;
      if (shared !== null) sum += gate * shared.x[t * d + i]!;
      out[t * d + i] = sum;
    }
  }
  return out;
}
