// Decode graphs on both backends (the CPU library, and the CUDA kernels emulated in CI, real on a
// GPU): replaying a captured step (padded to a capture size, index arrays and sampling parameters
// uploaded into the graph's own buffer) gives the same tokens as running the step op by op, for
// greedy and random rows, across batch sizes, growing block tables and a workspace that moves
// under the graphs.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Backend } from "../../src/backend/backend.ts";
import { bitmaskWords, type TokenBitmask } from "../../src/engine/structured-output/token-bitmask.ts";
import { type EngineModel, loadModelWeights, resolveModel } from "../../src/model/load-model.ts";
import { captureSizes, DecodeGraphs } from "../../src/worker/decode-graphs.ts";
import { type DeviceSamplingParams, type ForwardBatch, ModelForward } from "../../src/worker/forward.ts";
import { KvCacheTensors } from "../../src/worker/kv-cache-tensors.ts";
import { cudaLibraryUnderTest } from "../helpers/cuda-library.ts";
import { writeRandomModel } from "../helpers/random-model.ts";

const blockSize = 16;
// The backend and model of the describe block running now (each opens its own).
let backend: Backend;
let model: EngineModel;

test("capture sizes are 1, 2, 4 and multiples of 8, ending at the largest batch", () => {
  expect(captureSizes(1)).toEqual([1]);
  expect(captureSizes(20)).toEqual([1, 2, 4, 8, 16, 20]);
  expect(captureSizes(32)).toEqual([1, 2, 4, 8, 16, 24, 32]);
});

/** One engine's view: its own KV cache, forward and block tables. */
class Runner {
  readonly kvCache = KvCacheTensors.allocate(backend, model.config, 64, blockSize, model.weights.dtype);
  readonly forward = new ModelForward(backend, model.config, model.weights, this.kvCache, model.actDtype);
  readonly graphs = new DecodeGraphs(backend, this.forward, { maxBatch: 8, blockSize, maxModelLen: 256 });
  private nextBlock = 0;
  readonly tables: number[][] = [];

  /** A batch of `lengths[s]` new tokens for each sequence s after `done[s]` cached ones. */
  batch(sequences: number[][], done: number[], lengths: number[]): ForwardBatch {
    const tokenIds: number[] = [],
      positions: number[] = [],
      slots: number[] = [],
      queryStartLoc = [0],
      seqLens: number[] = [];
    sequences.forEach((tokens, s) => {
      this.tables[s] ??= [];
      const table = this.tables[s];
      for (let i = 0; i < lengths[s]!; i++) {
        const position = done[s]! + i;
        if (position % blockSize === 0) table.push((this.nextBlock++ * 5) % 64);
        tokenIds.push(tokens[position]!);
        positions.push(position);
        slots.push(table[Math.floor(position / blockSize)]! * blockSize + (position % blockSize));
      }
      queryStartLoc.push(tokenIds.length);
      seqLens.push(done[s]! + lengths[s]!);
    });
    const active = this.tables.slice(0, sequences.length);
    const maxBlocksPerSeq = Math.max(...active.map((t) => t.length));
    const blockTables = new Int32Array(sequences.length * maxBlocksPerSeq);
    active.forEach((t, s) => {
      blockTables.set(t, s * maxBlocksPerSeq);
    });
    return {
      tokenIds: Int32Array.from(tokenIds),
      positions: Int32Array.from(positions),
      slotMapping: Int32Array.from(slots),
      queryStartLoc: Int32Array.from(queryStartLoc),
      seqLens: Int32Array.from(seqLens),
      blockTables,
      maxBlocksPerSeq,
      logitsIndices: Int32Array.from(queryStartLoc.slice(1), (end) => end - 1),
    };
  }

  free(): void {
    this.graphs.free();
    this.forward.free();
    this.kvCache.free();
  }
}

/** Masks for the given sampled rows, each allowing only its listed tokens. */
function maskOf(vocab: number, rows: number[], allowed: number[][]): TokenBitmask {
  const wordsPerRow = bitmaskWords(vocab);
  const words = new Int32Array(rows.length * wordsPerRow);
  allowed.forEach((tokens, i) => {
    for (const t of tokens) words[i * wordsPerRow + (t >> 5)]! |= 1 << (t & 31);
  });
  return { rowIndices: Int32Array.from(rows), words, wordsPerRow };
}

function params(rows: number, step: number): DeviceSamplingParams {
  // Row 0 greedy, the others random with different filters; draws vary with the step.
  return {
    temperatures: Float32Array.from({ length: rows }, (_, r) => (r === 0 ? 0 : 0.7 + 0.1 * r)),
    topK: Int32Array.from({ length: rows }, (_, r) => (r % 2 ? 5 : 0)),
    topP: Float32Array.from({ length: rows }, (_, r) => (r % 3 === 2 ? 0.8 : 1)),
    minP: Float32Array.from({ length: rows }, (_, r) => (r === 3 ? 0.05 : 0)),
    uniforms: Float32Array.from({ length: rows }, (_, r) => ((step * 7 + r * 13) % 17) / 17),
  };
}

for (const [label, libraryPath] of [
  ["CPU", undefined],
  ["CUDA", cudaLibraryUnderTest],
] as const) {
  describe(`decode graphs on the ${label} backend`, () => {
    beforeAll(async () => {
      backend = await Backend.open({ libraryPath });
      const written = await writeRandomModel({
        architecture: "LlamaForCausalLM",
        dtype: "bfloat16",
        hiddenSize: 64,
        intermediateSize: 96,
        numLayers: 2,
        numHeads: 4,
        numKvHeads: 2,
        maxPositionEmbeddings: 256,
        seed: 9,
      });
      model = loadModelWeights(backend, await resolveModel(written.dir));
    });
    afterAll(() => {
      model.weights.free();
      backend.close();
    });

    test("replayed steps give the eager steps' tokens as batches grow, shrink and cross blocks", async () => {
      const eager = new Runner();
      const graphed = new Runner();
      try {
        const vocab = model.config.vocabSize;
        const sequences = [20, 5, 14, 9, 3].map((length, s) =>
          Array.from({ length }, (_, i) => (i * 31 + s * 17 + 1) % vocab),
        );
        const done = sequences.map(() => 0);
        // Prefill everyone (not a decode step: both run it op by op).
        const prefill = sequences.map((s) => s.length);
        for (const runner of [eager, graphed]) runner.forward.forward(runner.batch(sequences, done, prefill));
        prefill.forEach((n, s) => {
          done[s] = n;
        });
        for (let step = 0; step < 14; step++) {
          // The batch shrinks to its first 3 sequences halfway, so a second capture size is used.
          const active = step < 7 ? sequences : sequences.slice(0, 3);
          const ones = active.map(() => 1);
          const eagerBatch = eager.batch(active, done, ones);
          const graphBatch = graphed.batch(active, done, ones);
          expect(graphed.graphs.canRun(graphBatch)).toBe(true);
          const expected = await eager.forward.sample(eagerBatch, params(active.length, step));
          const actual = await graphed.graphs.run(graphBatch, params(active.length, step));
          expect(Array.from(actual)).toEqual(Array.from(expected));
          active.forEach((tokens, s) => {
            tokens.push(expected[s]!);
            done[s]! += 1;
          });
        }
        // Sizes 8 (5 sequences) and 4 (3 sequences), each at table widths 2 and (after 32 tokens) 4.
        expect(graphed.graphs.size).toBeGreaterThanOrEqual(2);
      } finally {
        eager.free();
        graphed.free();
      }
    });

    test("a workspace that grows after capture is recaptured, not replayed stale", async () => {
      const graphed = new Runner();
      const eager = new Runner();
      try {
        const sequences = [
          [1, 2, 3],
          [4, 5, 6, 7],
        ];
        const done = [0, 0];
        for (const runner of [eager, graphed]) runner.forward.forward(runner.batch(sequences, done, [3, 4]));
        done.splice(0, 2, 3, 4);
        const decode = async () => {
          const expected = await eager.forward.sample(eager.batch(sequences, done, [1, 1]), params(2, 0));
          const actual = await graphed.graphs.run(graphed.batch(sequences, done, [1, 1]), params(2, 0));
          expect(Array.from(actual)).toEqual(Array.from(expected));
          sequences.forEach((s, i) => {
            s.push(expected[i]!);
          });
          done[0]! += 1;
          done[1]! += 1;
        };
        await decode();
        const version = graphed.forward.workspaceVersion;
        graphed.forward.reserve(200, 8); // as a large prefill would
        expect(graphed.forward.workspaceVersion).toBeGreaterThan(version);
        await decode();
      } finally {
        graphed.free();
        eager.free();
      }
    });

    test("a masked step replays the forward alone and samples within masks that arrive while it runs", async () => {
      const eager = new Runner();
      const graphed = new Runner();
      try {
        const vocab = model.config.vocabSize;
        const sequences = [6, 11, 4].map((length, s) => Array.from({ length }, (_, i) => (i * 7 + s * 5 + 2) % vocab));
        const done = sequences.map(() => 0);
        const prefill = sequences.map((s) => s.length);
        for (const runner of [eager, graphed]) runner.forward.forward(runner.batch(sequences, done, prefill));
        prefill.forEach((n, s) => {
          done[s] = n;
        });
        // The eager path must enqueue the forward pass before it waits for the masks.
        const enqueue = eager.forward.enqueue.bind(eager.forward);
        let enqueued = false;
        eager.forward.enqueue = (...args) => {
          enqueued = true;
          return enqueue(...args);
        };
        const forwardBeforeMasks: boolean[] = [];
        for (let step = 0; step < 4; step++) {
          // Rows 0 and 2 are constrained to three tokens each; row 1 is free.
          const allowed = [0, 2].map((row) => [0, 1, 2].map((k) => (step * 11 + row * 5 + k * 17) % vocab));
          const mask = maskOf(vocab, [0, 2], allowed);
          const ones = sequences.map(() => 1);
          enqueued = false;
          const awaited = {
            // biome-ignore lint/suspicious/noThenProperty: a thenable that records when it is awaited
            then: (resolve: (value: TokenBitmask) => void) => {
              forwardBeforeMasks.push(enqueued);
              resolve(mask);
            },
          } as unknown as Promise<TokenBitmask>;
          const expected = await eager.forward.sample(eager.batch(sequences, done, ones), params(3, step), awaited);
          const arriving = new Promise<TokenBitmask>((resolve) => setTimeout(() => resolve(mask), 5));
          const actual = await graphed.graphs.run(graphed.batch(sequences, done, ones), params(3, step), arriving);
          expect(Array.from(actual)).toEqual(Array.from(expected));
          expect(allowed[0]).toContain(actual[0]!);
          expect(allowed[1]).toContain(actual[2]!);
          sequences.forEach((tokens, s) => {
            tokens.push(expected[s]!);
            done[s]! += 1;
          });
        }
        expect(forwardBeforeMasks).toEqual([true, true, true, true]);
        // The unmasked capture of the same shape is a different graph.
        const before = graphed.graphs.size;
        await graphed.graphs.run(graphed.batch(sequences, done, [1, 1, 1]), params(3, 0));
        expect(graphed.graphs.size).toBe(before + 1);
      } finally {
        eager.free();
        graphed.free();
      }
    });

    test("prefill chunks and steps with unsampled rows are not replayed", () => {
      const runner = new Runner();
      try {
        const prefill = runner.batch([[1, 2, 3]], [0], [3]);
        expect(runner.graphs.canRun(prefill)).toBe(false);
        const unsampled = { ...runner.batch([[1, 2, 3, 4]], [3], [1]), logitsIndices: new Int32Array(0) };
        expect(runner.graphs.canRun(unsampled)).toBe(false);
      } finally {
        runner.free();
      }
    });
  });
}
