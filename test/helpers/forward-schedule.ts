// Runs a model through the paged, batched native forward on a fixed schedule (several sequences
// whose prompts arrive in prefill chunks of different sizes, mixed in one batch with other
// sequences' decodes, their KV blocks scattered over the cache) and compares every computed row's
// logits with reference logits at the same position.
import type { Backend } from "../../src/backend/backend.ts";
import type { DType } from "../../src/backend/dtype.ts";
import type { ModelConfig } from "../../src/model/config.ts";
import { type LoadModelOptions, loadModelWeights, resolveModel } from "../../src/model/load-model.ts";
import { referenceForward } from "../../src/reference/forward.ts";
import { type ForwardBatch, ModelForward } from "../../src/worker/forward.ts";
import { KvCacheTensors } from "../../src/worker/kv-cache-tensors.ts";
import type { RandomModel } from "./random-model.ts";

/** Per step, how many new tokens each sequence computes (0 = not scheduled this step). */
const schedule = [
  [21, 13, 0],
  [1, 27, 9],
  [1, 1, 1],
  [1, 1, 1],
  [1, 1, 1],
];

export function sequenceLengths(): number[] {
  return schedule[0]!.map((_, s) => schedule.reduce((sum, step) => sum + step[s]!, 0));
}

/** Deterministic token ids in [0, vocab). */
export function tokens(count: number, vocab: number, salt: number): number[] {
  return Array.from({ length: count }, (_, i) => (i * 131 + salt * 977 + 7) % vocab);
}

export interface Comparison {
  maxError: number;
  logitScale: number;
  /** Each computed row's logits and the reference's, in order, with the number of tokens of its step. */
  rows: { actual: Float32Array; expected: Float32Array; stepTokens: number }[];
}

/** Runs the schedule through the native forward and compares every computed row's logits with
 * the reference at the same position. */
export async function runSchedule(
  config: ModelConfig,
  forward: ModelForward,
  blockSize: number,
  numBlocks: number,
  reference: Float32Array[],
  sequences: number[][],
): Promise<Comparison> {
  const vocab = config.vocabSize;
  // Physical blocks handed out in a scrambled order, so a table is never the identity.
  const freeBlocks = Array.from({ length: numBlocks }, (_, i) => (i * 7 + 3) % numBlocks);
  const tables: number[][] = sequences.map(() => []);
  const computed = sequences.map(() => 0);
  const maxBlocksPerSeq = Math.max(...sequences.map((s) => Math.ceil(s.length / blockSize)));
  let maxError = 0;
  let logitScale = 0;
  const rows: Comparison["rows"] = [];
  for (const step of schedule) {
    const scheduled = step.map((n, s) => ({ n, s })).filter(({ n }) => n > 0);
    const tokenIds: number[] = [];
    const positions: number[] = [];
    const slots: number[] = [];
    const queryStartLoc = [0];
    const seqLens: number[] = [];
    const blockTables = new Int32Array(scheduled.length * maxBlocksPerSeq);
    scheduled.forEach(({ n, s }, row) => {
      const table = tables[s]!;
      for (let i = 0; i < n; i++) {
        const position = computed[s]! + i;
        if (position % blockSize === 0) table.push(freeBlocks.shift()!);
        tokenIds.push(sequences[s]![position]!);
        positions.push(position);
        slots.push(table[Math.floor(position / blockSize)]! * blockSize + (position % blockSize));
      }
      computed[s]! += n;
      queryStartLoc.push(tokenIds.length);
      seqLens.push(computed[s]!);
      blockTables.set(table, row * maxBlocksPerSeq);
    });
    const batch: ForwardBatch = {
      tokenIds: Int32Array.from(tokenIds),
      positions: Int32Array.from(positions),
      slotMapping: Int32Array.from(slots),
      queryStartLoc: Int32Array.from(queryStartLoc),
      seqLens: Int32Array.from(seqLens),
      blockTables,
      maxBlocksPerSeq,
      logitsIndices: Int32Array.from(tokenIds, (_, i) => i),
    };
    const logits = await forward.logits(batch);
    scheduled.forEach(({ s }, row) => {
      for (let t = queryStartLoc[row]!; t < queryStartLoc[row + 1]!; t++) {
        const expected = reference[s]!.subarray(positions[t]! * vocab, (positions[t]! + 1) * vocab);
        rows.push({ actual: logits.slice(t * vocab, (t + 1) * vocab), expected, stepTokens: tokenIds.length });
        for (let v = 0; v < vocab; v++) {
          maxError = Math.max(maxError, Math.abs(logits[t * vocab + v]! - expected[v]!));
          logitScale = Math.max(logitScale, Math.abs(expected[v]!));
        }
      }
    });
  }
  return { maxError, logitScale, rows };
}

/**
 * Loads the written model (with `options`, e.g. a quantization), runs the schedule with the given
 * cache, and compares with the reference forward on `referenceWeights` (the model's own by default).
 */
export async function compareWithReference(
  backend: Backend,
  model: RandomModel,
  blockSize: number,
  cacheDtype: DType,
  options: LoadModelOptions = {},
  referenceWeights: Map<string, Float32Array> = model.weights,
): Promise<Comparison & { weightDtype: DType }> {
  const loaded = loadModelWeights(backend, await resolveModel(model.dir), options);
  const config = loaded.config;
  const sequences = sequenceLengths().map((length, s) => tokens(length, config.vocabSize, s));
  const reference = sequences.map((s) => referenceForward(config, referenceWeights, s));
  const numBlocks = sequences.reduce((sum, s) => sum + Math.ceil(s.length / blockSize), 0);
  const kvCache = KvCacheTensors.allocate(backend, config, numBlocks, blockSize, cacheDtype);
  const forward = new ModelForward(backend, config, loaded.weights, kvCache, loaded.actDtype);
  try {
    return {
      ...(await runSchedule(config, forward, blockSize, numBlocks, reference, sequences)),
      weightDtype: loaded.weights.dtype,
    };
  } finally {
    forward.free();
    kvCache.free();
    loaded.weights.free();
  }
}

/**
 * Every row close to the reference on the weights as stored: decode multiplies quantized weights
 * with activations quantized to int8 per block (1/254 of its largest value at most), as
 * llama.cpp does, on the CPU and CUDA alike; that moves logits by about a percent of their scale.
 */
export function expectQuantizedRowsClose(rows: Comparison["rows"], logitScale: number): void {
  const tolerance = 3e-2 * logitScale;
  for (const { actual, expected, stepTokens } of rows) {
    let worst = 0;
    for (let v = 0; v < actual.length; v++) worst = Math.max(worst, Math.abs(actual[v]! - expected[v]!));
    if (worst > tolerance) throw new Error(`a step of ${stepTokens} tokens is off by ${worst}, more than ${tolerance}`);
  }
}

/** A model shape whose every matrix has rows of whole 256-value blocks, so each K-quant applies as is. */
export const QUANTIZABLE_SHAPE = {
  dtype: "float32",
  hiddenSize: 256,
  intermediateSize: 512,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 64,
  tieWordEmbeddings: false,
} as const;
