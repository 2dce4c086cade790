// Timing of native ops against baselines measured in the same run (the device's copy bandwidth,
// the best matmul rate), shared by `vllm-ts bench kernels` and bench/matmul.ts. Paged attention
// has its own file (paged-attention-timing.ts).
import type { Address, Backend, Graph } from "../../backend/backend.ts";
import { type DType, dtypeBytes } from "../../backend/dtype.ts";
import { isQuantFormat, storageBytes, type WeightFormat } from "../../backend/weight-format.ts";

export interface TimingOptions {
  /** Keep repeating a measurement for at least this long. */
  minSeconds: number;
  /** Fewest timed samples, after the warm-up call. */
  minRepeats: number;
  /**
   * A sample is as many back-to-back calls as fill about this long (default 2 ms), then one
   * synchronize: on a GPU a call only enqueues its kernel, and a synchronize per call would time
   * the host round trip (tens of microseconds through the FFI) instead of a short kernel.
   */
  sampleSeconds?: number;
}

/** A figure for a report: `digits` decimals, and at least 4 significant digits below 1. */
export const round = (value: number, digits = 3) =>
  Math.abs(value) >= 1 || value === 0 ? Number(value.toFixed(digits)) : Number(value.toPrecision(4));

/** A figure for a table: 3 significant digits at most, whole numbers from 100. */
export const figure = (value: number) => (Math.abs(value) >= 100 ? value.toFixed(0) : value.toPrecision(3));

const DEFAULT_SAMPLE_SECONDS = 0.002;
const MAX_CALLS_PER_SAMPLE = 10_000;

/**
 * Seconds of one call: the fastest sample's time divided by its calls, after a warm-up call. On a
 * machine shared with other work (CI, a laptop) slower samples measure the neighbours, not the
 * kernel. `run` gets a running call index so that it can rotate through `rotation` cold copies of
 * its inputs; a sample holds whole rotations. Ops slower than a sample (every CPU matmul worth
 * timing) are timed one call at a time.
 *
 * On CUDA a sample is one replay of a graph of its calls, as the engine replays a decode step
 * (src/worker/decode-graphs.ts): called one by one, each call costs an FFI call and a kernel
 * launch on the host, which can take longer than a small kernel runs (a Q4_K matmul at m = 1
 * reads its weights in 2 to 14 µs on an H200), and the figure would time the launches.
 */
export function bestSeconds(
  backend: Backend,
  options: TimingOptions,
  run: (call: number) => void,
  rotation = 1,
): number {
  run(0);
  backend.synchronize();
  const t0 = performance.now();
  run(1);
  backend.synchronize();
  const single = (performance.now() - t0) / 1000;
  const sampleSeconds = options.sampleSeconds ?? DEFAULT_SAMPLE_SECONDS;
  const callsFor = (secondsPerCall: number) => {
    const calls = Math.min(MAX_CALLS_PER_SAMPLE, Math.ceil(sampleSeconds / Math.max(secondsPerCall, 1e-9)));
    return Math.max(1, Math.ceil(calls / rotation)) * rotation;
  };
  if (backend.name === "cuda") return fastestGraphReplay(backend, options, run, callsFor, single);
  const calls = callsFor(single);
  let call = 2;
  return fastestSample(options, single, () => {
    const s0 = performance.now();
    for (let i = 0; i < calls; i++) run(call++);
    backend.synchronize();
    return (performance.now() - s0) / 1000 / calls;
  });
}

/** The fastest of `best` and at least options.minRepeats samples taken over options.minSeconds. */
function fastestSample(options: TimingOptions, best: number, sample: () => number): number {
  const start = performance.now();
  for (let n = 1; n <= options.minRepeats || performance.now() - start < options.minSeconds * 1000; n++)
    best = Math.min(best, sample());
  return best;
}

/**
 * bestSeconds on CUDA. The single call timed first includes the host's round trip to the GPU
 * (tens of microseconds), so for a small kernel it asks for too few calls per sample: the graph
 * is captured again with as many calls as its first replay shows fill a sample, so that each
 * replay's own launch and synchronize stay a small part of it.
 */
function fastestGraphReplay(
  backend: Backend,
  options: TimingOptions,
  run: (call: number) => void,
  callsFor: (secondsPerCall: number) => number,
  single: number,
): number {
  const capture = (calls: number) =>
    backend.captureGraph(() => {
      for (let call = 0; call < calls; call++) run(call);
    });
  const replaySeconds = (graph: Graph) => {
    const s0 = performance.now();
    graph.launch();
    backend.synchronize();
    return (performance.now() - s0) / 1000;
  };
  let calls = callsFor(single);
  let graph = capture(calls);
  try {
    const estimate = replaySeconds(graph) / calls;
    if (callsFor(estimate) > calls) {
      graph.destroy();
      calls = callsFor(estimate);
      graph = capture(calls);
      replaySeconds(graph);
    }
    return fastestSample(options, Math.min(single, estimate), () => replaySeconds(graph) / calls);
  } finally {
    graph.destroy();
  }
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
  weightDtype: WeightFormat;
  actDtype: DType;
  microseconds: number;
  gflops: number;
  /** Weight bytes read per second: meaningful where m is small enough to be memory-bound. */
  weightGBps: number;
}

/** Fills w [n, k] with small uniform values in `format`, quantized and packed as vt_matmul reads them. */
export function fillWeights(
  backend: Backend,
  w: Address,
  format: WeightFormat,
  n: number,
  k: number,
  seed: number,
): void {
  if (!isQuantFormat(format)) {
    backend.fillUniform(w, format, n * k, seed, 0.05);
    return;
  }
  const staging = backend.malloc(n * k * 4);
  try {
    backend.fillUniform(staging, "f32", n * k, seed, 0.05);
    backend.convert(w, format, staging, "f32", n * k);
    backend.packWeights({ w, n, k, format });
  } finally {
    backend.free(staging);
  }
}

/**
 * vt_matmul at each row count of the shape, activations in `actDtype` (what the model computes in
 * on this backend: f32 on the CPU, the weights' dtype on CUDA). Weights rotate through enough
 * copies to fill `coldBytes`, as in a forward pass where every layer's weights come from DRAM.
 */
export function timeMatmul(
  backend: Backend,
  options: TimingOptions,
  shape: MatmulShape,
  weightDtype: WeightFormat,
  coldBytes: number,
  actDtype: DType = "f32",
): MatmulResult[] {
  const { n, k } = shape;
  const maxM = Math.max(...shape.rowCounts);
  const weightBytes = storageBytes(weightDtype, n * k);
  const x = backend.malloc(maxM * k * dtypeBytes(actDtype));
  const out = backend.malloc(maxM * n * dtypeBytes(actDtype));
  const copies: Address[] = [];
  try {
    backend.fillUniform(x, actDtype, maxM * k, 1, 1);
    for (let c = 0; c < Math.max(1, Math.ceil(coldBytes / weightBytes)); c++) {
      const w = backend.malloc(weightBytes);
      copies.push(w);
      fillWeights(backend, w, weightDtype, n, k, 2 + c);
    }
    return shape.rowCounts.map((m) => {
      const seconds = bestSeconds(
        backend,
        options,
        (call) => backend.matmul({ x, w: copies[call % copies.length]!, out, m, n, k, actDtype, weightDtype }),
        copies.length,
      );
      return {
        n,
        k,
        m,
        weightDtype,
        actDtype,
        microseconds: seconds * 1e6,
        gflops: (2 * m * n * k) / seconds / 1e9,
        weightGBps: weightBytes / seconds / 1e9,
      };
    });
  } finally {
    copies.forEach((w) => {
      backend.free(w);
    });
    backend.free(x);
    backend.free(out);
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
  const act = dtypeBytes(actDtype);
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
        ? backend.rmsNorm({
            input,
            residual: null,
            weight,
            out,
            numTokens,
            hiddenSize,
            eps: 1e-6,
            actDtype,
            weightDtype: actDtype,
          })
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
