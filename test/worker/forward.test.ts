// The paged, batched native forward against the plain reference forward: several sequences
// whose prompts arrive in prefill chunks of different sizes, mixed in one batch with other
// sequences' decodes, their KV blocks scattered over the cache, for every architecture.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Backend } from "../../src/backend/backend.ts";
import type { DType } from "../../src/backend/dtype.ts";
import type { Architecture, ModelConfig } from "../../src/model/config.ts";
import { loadModelWeights, resolveModel } from "../../src/model/load-model.ts";
import { referenceForward } from "../../src/reference/forward.ts";
import { type ForwardBatch, ModelForward } from "../../src/worker/forward.ts";
import { KvCacheTensors } from "../../src/worker/kv-cache-tensors.ts";
import { type RandomModel, type RandomModelOptions, writeRandomModel } from "../helpers/random-model.ts";

let backend: Backend;
beforeAll(async () => {
  backend = await Backend.open({ device: "cpu" });
});
afterAll(() => backend.close());

/** Per step, how many new tokens each sequence computes (0 = not scheduled this step). */
const schedule = [
  [21, 13, 0],
  [1, 27, 9],
  [1, 1, 1],
  [1, 1, 1],
  [1, 1, 1],
];

function sequenceLengths(): number[] {
  return schedule[0]!.map((_, s) => schedule.reduce((sum, step) => sum + step[s]!, 0));
}

/** Deterministic token ids in [0, vocab). */
function tokens(count: number, vocab: number, salt: number): number[] {
  return Array.from({ length: count }, (_, i) => (i * 131 + salt * 977 + 7) % vocab);
}

interface Comparison {
  maxError: number;
  logitScale: number;
}

/** Runs the schedule through the native forward and compares every computed row's logits with
 * the reference at the same position. */
async function runSchedule(
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
        for (let v = 0; v < vocab; v++) {
          maxError = Math.max(maxError, Math.abs(logits[t * vocab + v]! - expected[v]!));
          logitScale = Math.max(logitScale, Math.abs(expected[v]!));
        }
      }
    });
  }
  return { maxError, logitScale };
}

const architectures: { architecture: Architecture; options: RandomModelOptions }[] = [
  { architecture: "LlamaForCausalLM", options: { numHeads: 4, numKvHeads: 2, tieWordEmbeddings: false } },
  {
    architecture: "LlamaForCausalLM",
    options: {
      numHeads: 4,
      numKvHeads: 1,
      ropeScaling: {
        type: "llama3",
        factor: 8,
        lowFreqFactor: 1,
        highFreqFactor: 4,
        originalMaxPositionEmbeddings: 16,
      },
    },
  },
  { architecture: "MistralForCausalLM", options: { numHeads: 4, numKvHeads: 4, slidingWindow: 24 } },
  { architecture: "Qwen2ForCausalLM", options: { numHeads: 4, numKvHeads: 2, tieWordEmbeddings: true } },
  { architecture: "Qwen3ForCausalLM", options: { numHeads: 4, numKvHeads: 2, headDim: 32, tieWordEmbeddings: true } },
];

/** Loads the written model, runs the schedule with the given cache, and returns the worst error. */
async function compareWithReference(
  model: RandomModel,
  blockSize: number,
  cacheDtype: DType,
): Promise<Comparison & { weightDtype: DType }> {
  const loaded = loadModelWeights(backend, await resolveModel(model.dir));
  const config = loaded.config;
  const sequences = sequenceLengths().map((length, s) => tokens(length, config.vocabSize, s));
  const reference = sequences.map((s) => referenceForward(config, model.weights, s));
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

describe("paged batched forward equals the reference forward", () => {
  for (const { architecture, options } of architectures) {
    for (const blockSize of [16, 32]) {
      const label = `${architecture}${options.ropeScaling ? " (llama3 rope)" : ""}${options.slidingWindow ? " (sliding window)" : ""}, block size ${blockSize}`;
      test(label, async () => {
        const model = await writeRandomModel({
          architecture,
          dtype: "float32",
          hiddenSize: 64,
          intermediateSize: 96,
          numLayers: 2,
          seed: 11,
          ...options,
        });
        const { maxError, logitScale } = await compareWithReference(model, blockSize, "f32");
        expect(logitScale).toBeGreaterThan(0.5);
        expect(maxError).toBeLessThanOrEqual(1e-4 * logitScale);
      });
    }
  }

  test("bf16 weights and KV cache stay close to the reference on the stored weights", async () => {
    const model = await writeRandomModel({
      architecture: "Qwen3ForCausalLM",
      dtype: "bfloat16",
      hiddenSize: 64,
      intermediateSize: 96,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 32,
      seed: 5,
    });
    const { maxError, logitScale, weightDtype } = await compareWithReference(model, 16, "bf16");
    expect(weightDtype).toBe("bf16");
    // Only the cache's bf16 rounding separates the two; it costs a few parts in a thousand.
    expect(maxError).toBeLessThanOrEqual(2e-2 * logitScale);
  });
});
