// Decode steps as captured graphs (vLLM's CUDA graphs): a decode step of a small model is
// hundreds of tiny kernels whose launch cost (an FFI call plus a CUDA launch each) exceeds their
// run time. A step of B sequences is padded to a captured batch size and replayed as one graph.
// On the CPU a graph is the recorded op calls (cuda/cpu/graph.h): one FFI call per step, and the
// OpenMP workers stay awake from one op to the next.
//
// A graph replays fixed device addresses and fixed launch shapes, so each one is keyed by
// (padded batch size, block-table width) and owns a buffer laid out for exactly that key: the
// step's index arrays and sampling parameters are uploaded into it in one copy, then the graph
// (forward pass + vt_sample) runs, and only the token ids come back. Padding rows have no cache
// slot (-1), length 0 and temperature 0, so they write nothing and their outputs are ignored.
// Graphs are captured lazily, on a key's first use, and dropped when the forward's workspace
// moves (it grows for a larger prefill), since they captured its addresses. So unlike vLLM's
// start-up capture, each capture is logged (at debug level) when it happens, during serving.
//
// A step with grammar-constrained rows replays a graph of the forward pass alone; its masks,
// filled on the grammar thread while that graph runs, are applied and the rows sampled after it
// (two launches instead of the whole forward's hundreds).
import type { Address, Backend, Graph } from "../backend/backend.ts";
import type { PendingBitmask } from "../engine/structured-output/token-bitmask.ts";
import { logger, withFields } from "../logger.ts";
import {
  type DeviceSamplingBuffers,
  type DeviceSamplingParams,
  type ForwardBatch,
  type ModelForward,
  packStep,
} from "./forward.ts";

/** vLLM's capture sizes: 1, 2, 4, then every multiple of 8. */
export function captureSizes(maxBatch: number): number[] {
  const sizes = [1, 2, 4].filter((n) => n <= maxBatch);
  for (let n = 8; n <= maxBatch; n += 8) sizes.push(n);
  if (sizes.at(-1)! < maxBatch) sizes.push(maxBatch);
  return sizes;
}

interface CapturedStep {
  graph: Graph;
  buffer: Address;
  /** The step's logits, in the forward's workspace. */
  logits: Address;
  /** The step's sampling parameters and, at .out, its tokens, inside the buffer. */
  sampling: DeviceSamplingBuffers;
  /** Whether the graph samples too (false: the forward pass alone, for masked steps). */
  samples: boolean;
  workspaceVersion: number;
}

export interface DecodeGraphOptions {
  /** The largest batch replayed as a graph; larger decode steps run eagerly. */
  maxBatch: number;
  blockSize: number;
  maxModelLen: number;
}

export class DecodeGraphs {
  private readonly steps = new Map<string, CapturedStep>();
  private readonly sizes: number[];
  private readonly maxBlocks: number;

  constructor(
    private readonly backend: Backend,
    private readonly forward: ModelForward,
    private readonly options: DecodeGraphOptions,
  ) {
    this.sizes = captureSizes(options.maxBatch);
    this.maxBlocks = Math.ceil(options.maxModelLen / options.blockSize);
  }

  /** Number of graphs captured so far (for tests and logs). */
  get size(): number {
    return this.steps.size;
  }

  /** A pure decode step (one new token per sequence, each sampled) small enough to replay. */
  canRun(batch: ForwardBatch): boolean {
    const numSeqs = batch.seqLens.length;
    if (numSeqs === 0 || numSeqs > this.options.maxBatch || batch.tokenIds.length !== numSeqs) return false;
    if (batch.logitsIndices.length !== numSeqs) return false;
    for (let i = 0; i < numSeqs; i++)
      if (batch.logitsIndices[i] !== i || batch.queryStartLoc[i + 1] !== i + 1) return false;
    return batch.maxBlocksPerSeq <= this.maxBlocks;
  }

  /**
   * Replays (capturing first if needed) the step's graph; returns each sequence's token. With a
   * bitmask, the masks are awaited while the graph runs and applied before sampling.
   */
  async run(batch: ForwardBatch, params: DeviceSamplingParams, bitmask: PendingBitmask = null): Promise<Int32Array> {
    return (await this.launch(batch, params, bitmask))();
  }

  /** run() without the wait: launches the graph and returns what downloads the ids once they exist. */
  async launch(
    batch: ForwardBatch,
    params: DeviceSamplingParams,
    bitmask: PendingBitmask = null,
  ): Promise<() => Int32Array> {
    this.forward.checkPositions(batch.positions);
    const numSeqs = batch.seqLens.length;
    const padded = this.sizes.find((n) => n >= numSeqs)!;
    // Table widths in powers of two bound both the upload and the attention launch to 2x need.
    const blocks = Math.min(this.maxBlocks, 2 ** Math.ceil(Math.log2(Math.max(1, batch.maxBlocksPerSeq))));
    const step = this.step(padded, blocks, bitmask === null);
    this.backend.upload(step.buffer, packStep(padBatch(batch, padded, blocks), padParams(params, padded)).packed);
    step.graph.launch();
    if (!step.samples) {
      // Mask rows index the sampled rows, which are the graph's first numSeqs rows.
      this.forward.applyBitmask(step.logits, padded, await bitmask);
      this.forward.enqueueSample(step.logits, padded, step.sampling);
    }
    return () => this.backend.download(new Int32Array(numSeqs), step.sampling.out);
  }

  free(): void {
    for (const step of this.steps.values()) this.release(step);
    this.steps.clear();
  }

  private release(step: CapturedStep): void {
    step.graph.destroy();
    this.backend.free(step.buffer);
  }

  private step(padded: number, blocks: number, samples: boolean): CapturedStep {
    const key = `${padded}x${blocks}${samples ? "" : " logits"}`;
    const existing = this.steps.get(key);
    if (existing && existing.workspaceVersion === this.forward.workspaceVersion) return existing;
    if (existing) {
      this.release(existing);
      this.steps.delete(key);
    }
    this.forward.reserve(padded, padded);
    const layout = packStep(emptyBatch(padded, blocks), padParams(null, padded));
    const buffer = this.backend.malloc(layout.packed.byteLength);
    const shape = {
      numTokens: padded,
      numSeqs: padded,
      numLogits: padded,
      maxQueryLen: 1,
      maxSeqLen: blocks * this.options.blockSize,
      maxBlocksPerSeq: blocks,
    };
    const { meta, sampling } = layout.at(buffer);
    let graph: Graph;
    let logits: Address | null = null;
    const captureStarted = performance.now();
    try {
      graph = this.backend.captureGraph(() => {
        logits = this.forward.enqueue(meta, shape);
        if (samples) this.forward.enqueueSample(logits, padded, sampling);
      });
    } catch (error) {
      this.backend.free(buffer);
      throw error;
    }
    const step = { graph, buffer, logits: logits!, sampling, samples, workspaceVersion: this.forward.workspaceVersion };
    this.steps.set(key, step);
    const seconds = (performance.now() - captureStarted) / 1000;
    logger.debug(
      withFields(
        `captured a decode graph (batch ${padded}, block tables ${blocks} wide${samples ? "" : ", logits only"}) ` +
          `in ${seconds.toFixed(3)} s; ${this.steps.size} held`,
        { step: "graph_capture", batch_size: padded, blocks, samples, graphs: this.steps.size, seconds },
      ),
    );
    return step;
  }
}

/** The batch padded to `padded` rows and `blocks` table columns (see emptyBatch). */
function padBatch(batch: ForwardBatch, padded: number, blocks: number): ForwardBatch {
  const out = emptyBatch(padded, blocks);
  out.tokenIds.set(batch.tokenIds);
  out.positions.set(batch.positions);
  out.slotMapping.set(batch.slotMapping);
  out.seqLens.set(batch.seqLens);
  for (let s = 0; s < batch.seqLens.length; s++) {
    const row = batch.blockTables.subarray(s * batch.maxBlocksPerSeq, (s + 1) * batch.maxBlocksPerSeq);
    out.blockTables.set(row, s * blocks);
  }
  return out;
}

/** The parameters padded to `padded` rows with greedy rows (null: all padding). */
function padParams(params: DeviceSamplingParams | null, padded: number): DeviceSamplingParams {
  const out: DeviceSamplingParams = {
    temperatures: new Float32Array(padded),
    topK: new Int32Array(padded),
    topP: new Float32Array(padded).fill(1),
    minP: new Float32Array(padded),
    uniforms: new Float32Array(padded),
  };
  if (params) {
    out.temperatures.set(params.temperatures);
    out.topK.set(params.topK);
    out.topP.set(params.topP);
    out.minP.set(params.minP);
    out.uniforms.set(params.uniforms);
  }
  return out;
}

/** A decode batch of `rows` padding rows: one query token each, no cache slot, length 0. */
function emptyBatch(rows: number, blocks: number): ForwardBatch {
  return {
    tokenIds: new Int32Array(rows),
    positions: new Int32Array(rows),
    slotMapping: new Int32Array(rows).fill(-1),
    queryStartLoc: Int32Array.from({ length: rows + 1 }, (_, i) => i),
    seqLens: new Int32Array(rows),
    blockTables: new Int32Array(rows * blocks),
    maxBlocksPerSeq: blocks,
    logitsIndices: Int32Array.from({ length: rows }, (_, i) => i),
  };
}
