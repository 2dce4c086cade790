// Timing of native ops against baselines measured in the same run (the device's copy bandwidth,
// the best matmul rate), shared by `vllm-ts bench kernels` and bench/matmul.ts.
import type { Address, Backend } from "../../backend/backend.ts";
import { dtypeBytes, type DType } from "../../backend/dtype.ts";

export interface TimingOptions {
  /** Keep repeating a measurement for at least this long. */
  minSeconds: number;
  /** Fewest timed calls, after the warm-up call. */
  minRepeats: number;
}

/**
 * Fastest seconds of one call, after a warm-up call: on a machine shared with other work (CI, a
 * laptop) slower calls measure the neighbours, not the kernel. `run` gets the repeat index so
 * that it can rotate through cold copies of its inputs.
 */
export function bestSeconds(backend: Backend, options: TimingOptions, run: (repeat: number) => void): number {
  run(0);
  backend.synchronize();
  let best = Infinity;
  const start = performance.now();
  for (let repeat = 1; repeat <= options.minRepeats || performance.now() - start < options.minSeconds * 1000; repeat++) {
    const t0 = performance.now();
    run(repeat);
    backend.synchronize();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return best;
}

/** Device-to-device copy bandwidth, read + write, in GB/s: the memory-bound ops' baseline. */
export function copyBandwidthGBs(backend: Backend, options: TimingOptions, bytes: number): number {
  const src = backend.malloc(bytes);
  const dst = backend.malloc(bytes);
  try {
    backend.memset(src, 1, bytes);
    const seconds = bestSeconds(backend, options, () => backend.memcpy(dst, src, bytes, "deviceToDevice"));
    return (2 * bytes) / seconds / 1e9;
  } finally {
    backend.free(src);
    backend.free(dst);
  }
}

export interface MatmulShape {
  n: number;
  k: number;
  /** Row counts (tokens) to time. */
  rowCounts: number[];
}

export interface MatmulResult {
  n: number;
  k: number;
  m: number;
  weightDtype: DType;
  microseconds: number;
  gflops: number;
  /** Weight bytes read per second: meaningful where m is small enough to be memory-bound. */
  weightGBps: number;
}

/**
 * vt_matmul with f32 activations at each row count of the shape. Weights rotate through enough
 * copies to fill `coldBytes`, as in a forward pass where every layer's weights come from DRAM.
 */
export function timeMatmul(backend: Backend, options: TimingOptions, shape: MatmulShape, weightDtype: DType, coldBytes: number): MatmulResult[] {
  const { n, k } = shape;
  const maxM = Math.max(...shape.rowCounts);
  const weightBytes = n * k * dtypeBytes[weightDtype];
  const x = backend.malloc(maxM * k * 4);
  const out = backend.malloc(maxM * n * 4);
  const copies: Address[] = [];
  try {
    backend.fillUniform(x, "f32", maxM * k, 1, 1);
    for (let c = 0; c < Math.max(1, Math.ceil(coldBytes / weightBytes)); c++) {
      const w = backend.malloc(weightBytes);
      copies.push(w);
      backend.fillUniform(w, weightDtype, n * k, 2 + c, 0.05);
    }
    return shape.rowCounts.map((m) => {
      const seconds = bestSeconds(backend, options, (repeat) =>
        backend.matmul({ x, w: copies[repeat % copies.length]!, out, m, n, k, actDtype: "f32", weightDtype }),
      );
      return { n, k, m, weightDtype, microseconds: seconds * 1e6, gflops: (2 * m * n * k) / seconds / 1e9, weightGBps: weightBytes / seconds / 1e9 };
    });
  } finally {
    copies.forEach((w) => backend.free(w));
    backend.free(x);
    backend.free(out);
  }
}

export interface AttentionShape {
  numSeqs: number;
  seqLen: number;
  numQHeads: number;
  numKvHeads: number;
  headDim: number;
  blockSize: number;
}

/** Decode paged attention (one query token per sequence): KV bytes read per second, in GB/s. */
export function timePagedAttentionDecode(backend: Backend, options: TimingOptions, shape: AttentionShape, cacheDtype: DType): { microseconds: number; kvGBps: number } {
  const { numSeqs, seqLen, numQHeads, numKvHeads, headDim, blockSize } = shape;
  const blocksPerSeq = Math.ceil(seqLen / blockSize);
  const numBlocks = numSeqs * blocksPerSeq;
  const cacheBytes = numBlocks * blockSize * numKvHeads * headDim * dtypeBytes[cacheDtype];
  const blockTables = Int32Array.from({ length: numBlocks }, (_, i) => i);
  const seqLens = new Int32Array(numSeqs).fill(seqLen);
  const queryStartLoc = Int32Array.from({ length: numSeqs + 1 }, (_, i) => i);
  const addresses: Address[] = [];
  const alloc = (bytes: number) => {
    const address = backend.malloc(bytes);
    addresses.push(address);
    return address;
  };
  try {
    const [kCache, vCache] = [alloc(cacheBytes), alloc(cacheBytes)];
    const q = alloc(numSeqs * numQHeads * headDim * 4);
    const out = alloc(numSeqs * numQHeads * headDim * 4);
    const tables = alloc(blockTables.byteLength);
    const lens = alloc(seqLens.byteLength);
    const starts = alloc(queryStartLoc.byteLength);
    backend.fillUniform(kCache, cacheDtype, cacheBytes / dtypeBytes[cacheDtype], 1, 1);
    backend.fillUniform(vCache, cacheDtype, cacheBytes / dtypeBytes[cacheDtype], 2, 1);
    backend.fillUniform(q, "f32", numSeqs * numQHeads * headDim, 3, 1);
    backend.upload(tables, blockTables);
    backend.upload(lens, seqLens);
    backend.upload(starts, queryStartLoc);
    const seconds = bestSeconds(backend, options, () =>
      backend.pagedAttention({
        out, q, kCache, vCache, blockTables: tables, seqLens: lens, queryStartLoc: starts, numSeqs, numTokens: numSeqs,
        maxQueryLen: 1, maxSeqLen: seqLen, maxBlocksPerSeq: blocksPerSeq, numQHeads, numKvHeads, headDim,
        qRowStride: numQHeads * headDim, blockSize, scale: 1 / Math.sqrt(headDim), slidingWindow: 0, actDtype: "f32", cacheDtype,
      }),
    );
    const kvBytesRead = 2 * numSeqs * seqLen * numKvHeads * headDim * dtypeBytes[cacheDtype];
    return { microseconds: seconds * 1e6, kvGBps: kvBytesRead / seconds / 1e9 };
  } finally {
    addresses.forEach((address) => backend.free(address));
  }
}

/** A memory-bound elementwise op over `numTokens` rows: bytes read + written per second, in GB/s. */
export function timeElementwise(
  backend: Backend,
  options: TimingOptions,
  op: "rms_norm" | "silu_and_mul",
  numTokens: number,
  hiddenSize: number,
  actDtype: DType,
): { microseconds: number; GBps: number } {
  const act = dtypeBytes[actDtype];
  // rms_norm reads the input and writes the output in place; silu_and_mul reads 2d and writes d.
  const inputCount = numTokens * hiddenSize * (op === "silu_and_mul" ? 2 : 1);
  const input = backend.malloc(inputCount * act);
  const out = backend.malloc(numTokens * hiddenSize * act);
  const weight = backend.malloc(hiddenSize * act);
  try {
    backend.fillUniform(input, actDtype, inputCount, 1, 1);
    backend.fillUniform(weight, actDtype, hiddenSize, 2, 1);
    const seconds = bestSeconds(backend, options, () =>
      op === "rms_norm"
        ? backend.rmsNorm({ input, residual: null, weight, out, numTokens, hiddenSize, eps: 1e-6, actDtype, weightDtype: actDtype })
        : backend.siluAndMul({ x: input, out, numTokens, d: hiddenSize, actDtype }),
    );
    const bytesMoved = (inputCount + numTokens * hiddenSize) * act;
    return { microseconds: seconds * 1e6, GBps: bytesMoved / seconds / 1e9 };
  } finally {
    backend.free(input);
    backend.free(out);
    backend.free(weight);
  }
}
