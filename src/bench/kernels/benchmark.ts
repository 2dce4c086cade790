// `vllm-ts bench kernels`: the native ops on the active device. Without sweeps, one quick look at
// every kind of op (summary.ts); with them, the figures the GPU work is judged by, on a model's
// shapes (Llama-3.1-8B unless a model folder is given): decode paged attention as a fraction of
// the memory bandwidth, prefill paged attention and the linear layers' matmuls in TFLOP/s, these
// two also against PyTorch with a torch baseline. Activations are in the dtype the model computes
// in on the backend (f32 on the CPU, bf16 on CUDA); weights and the KV cache are bf16.
import packageJson from "../../../package.json";
import { activationDtype } from "../../backend/activation-dtype.ts";
import { Backend, type BackendOptions } from "../../backend/backend.ts";
import type { DType } from "../../backend/dtype.ts";
import type { WeightFormat } from "../../backend/weight-format.ts";
import { logger } from "../../logger.ts";
import { cublasDisabledByEnvironment, cublasLoadable, openOwnKernelsBackend } from "./cublas-toggle.ts";
import {
  type AttentionSweepSetup,
  type MemoryBaselines,
  printDecodeAttentionSweep,
  runDecodeAttentionSweep,
} from "./decode-attention-sweep.ts";
import { peakBandwidth } from "./device-peaks.ts";
import { type MatmulPath, type MatmulSetup, printMatmulSweep, runMatmulSweep } from "./matmul-sweep.ts";
import { kernelModel } from "./model-shapes.ts";
import { type MoeShape, printMoeSweep, runMoeSweep } from "./moe-sweep.ts";
import { printPrefillAttentionSweep, runPrefillAttentionSweep } from "./prefill-attention-sweep.ts";
import { runKernelSummary } from "./summary.ts";
import { copyBandwidthGBs, round, type TimingOptions } from "./timing.ts";
import { readTorchBaseline, type TorchBaseline } from "./torch-baseline.ts";

export const KERNEL_SWEEPS = ["decode-attention", "prefill-attention", "matmul", "moe"] as const;
export type KernelSweep = (typeof KERNEL_SWEEPS)[number];

/** Bf16 weights and KV cache: what the model runs on a GPU. */
const STORAGE_DTYPE: DType = "bf16";

export interface KernelsBenchOptions {
  /** The device and the CPU threads. */
  backend: BackendOptions;
  timing: TimingOptions;
  /** Matmul weights (and small KV caches) rotate through this many bytes of copies. */
  coldBytes: number;
  /** Size of the device copy that measures the bandwidth baseline. */
  copyBytes: number;
  /** The matmul sweep's weights: bf16, or a quantized format. */
  weightFormat: WeightFormat;
  /** The sweeps to run; null for the quick look at every op. */
  sweeps: KernelSweep[] | null;
  /** JSON of bench/torch_baseline.py to compare the prefill and matmul sweeps with. */
  torchBaseline: string | undefined;
  /** A model folder whose config.json gives the sweeps' shapes (default: Llama-3.1-8B's). */
  modelDir: string | undefined;
  /** A sweep case may use this fraction of the free device memory. */
  memoryFraction: number;
  grids: {
    batchSizes: number[];
    contextLens: number[];
    prefillSeqs: number[];
    prefillLens: number[];
    matmulRows: number[];
    moeTokens: number[];
  };
  /** The moe sweep's expert shapes. */
  moeShapes: MoeShape[];
  /** Tokens per KV-cache block in the sweeps. */
  blockSize: number;
  /** The device's peak memory bandwidth in GB/s as given; null to look it up in the table of known GPUs. */
  peakGBs: number | null;
  outputJson: string | undefined;
}

/** Measures the baselines, then the summary or the sweeps; prints the tables and writes the report. */
export async function runKernelsBenchmark(options: KernelsBenchOptions): Promise<void> {
  const { timing, coldBytes, copyBytes, sweeps, memoryFraction, grids, blockSize } = options;
  const torch = options.torchBaseline === undefined ? null : readTorchBaseline(options.torchBaseline);
  const model = await kernelModel(options.modelDir);
  const backend = await Backend.open(options.backend);
  try {
    const actDtype = activationDtype(backend, STORAGE_DTYPE);
    const peak =
      options.peakGBs !== null
        ? { entry: "--peak-gbs", bandwidthGBs: options.peakGBs }
        : peakBandwidth(backend.deviceName);
    logger.info(`bench kernels on ${backend.description}, activations ${actDtype}`);
    if (torch && torch.device !== backend.deviceName) {
      logger.warn(
        `--torch-baseline was measured on "${torch.device}", this run is on "${backend.deviceName}": fractions of torch compare different machines`,
      );
    }
    const copyGBps = copyBandwidthGBs(backend, timing, copyBytes);
    const baselines: MemoryBaselines = { copyBandwidthGBs: copyGBps, peakBandwidthGBs: peak?.bandwidthGBs ?? null };
    console.log(
      `device ${backend.description}; activations ${actDtype}; copy bandwidth ${copyGBps.toFixed(1)} GB/s (read + write); ` +
        `peak bandwidth ${peak ? `${peak.bandwidthGBs} GB/s (${peak.entry})` : "unknown"}`,
    );
    const header = {
      version: packageJson.version,
      command: "bench kernels",
      mode: sweeps === null ? "summary" : "sweep",
      device: {
        backend: backend.name,
        name: backend.deviceName,
        cpu_kernels: backend.cpuKernels,
        peak_bandwidth_gbs: peak?.bandwidthGBs ?? null,
        peak_bandwidth_entry: peak?.entry ?? null,
      },
      act_dtype: actDtype,
      config: {
        min_time_ms: timing.minSeconds * 1000,
        repeats: timing.minRepeats,
        cold_mib: coldBytes / 2 ** 20,
        copy_mib: copyBytes / 2 ** 20,
      },
    };

    let body: object;
    if (sweeps === null) {
      const summary = runKernelSummary(backend, timing, actDtype, coldBytes, copyGBps);
      body = { ...summary, baselines: { ...summary.baselines, peak_bandwidth_gbs: baselines.peakBandwidthGBs } };
    } else {
      const setup: AttentionSweepSetup = {
        model,
        blockSize,
        actDtype,
        cacheDtype: STORAGE_DTYPE,
        timing,
        memoryFraction,
      };
      const sections: Record<string, unknown> = {};
      if (sweeps.includes("decode-attention")) {
        const grid = { batchSizes: grids.batchSizes, contextLens: grids.contextLens, coldBytes };
        const sweep = runDecodeAttentionSweep(backend, setup, grid, baselines);
        printDecodeAttentionSweep(sweep, grid, baselines);
        sections.decode_attention = { cache_dtype: STORAGE_DTYPE, ...sweep };
      }
      if (sweeps.includes("prefill-attention")) {
        const sweep = runPrefillAttentionSweep(
          backend,
          setup,
          { numSeqs: grids.prefillSeqs, queryLens: grids.prefillLens },
          torch,
        );
        printPrefillAttentionSweep(sweep, torch !== null);
        sections.prefill_attention = { cache_dtype: STORAGE_DTYPE, ...sweep };
      }
      if (sweeps.includes("matmul")) {
        sections.matmul = await matmulSection(
          backend,
          options.backend,
          {
            model,
            rowCounts: grids.matmulRows,
            weightDtype: options.weightFormat,
            actDtype,
            coldBytes,
            timing,
          },
          baselines,
          torch,
        );
      }
      if (sweeps.includes("moe")) {
        const setup = {
          shapes: options.moeShapes,
          tokenCounts: grids.moeTokens,
          actDtype,
          weightDtype: options.weightFormat,
          timing,
        };
        const sweep = runMoeSweep(backend, setup, baselines);
        printMoeSweep(sweep);
        sections.moe = { shapes: options.moeShapes, results: sweep.rows, failed: sweep.failed };
      }
      body = {
        model: {
          name: model.name,
          hidden_size: model.hiddenSize,
          intermediate_size: model.intermediateSize,
          num_q_heads: model.numQHeads,
          num_kv_heads: model.numKvHeads,
          head_dim: model.headDim,
          block_size: blockSize,
        },
        baselines: {
          copy_bandwidth_gbs: round(copyGBps),
          peak_bandwidth_gbs: baselines.peakBandwidthGBs,
          ...(torch
            ? { torch: { file: options.torchBaseline, device: torch.device, torch_version: torch.torch_version } }
            : {}),
        },
        ...sections,
      };
    }
    if (options.outputJson)
      await Bun.write(
        options.outputJson,
        `${JSON.stringify({ ...header, ...body, date: new Date().toISOString() }, null, 2)}\n`,
      );
  } finally {
    backend.close();
  }
}

/** The matmul sweep on every path this backend has: cuBLAS (when found) and our own kernels. */
async function matmulSection(
  backend: Backend,
  openOptions: BackendOptions,
  setup: MatmulSetup,
  baselines: MemoryBaselines,
  torch: TorchBaseline | null,
) {
  // The CPU library has one path (ours); a CUDA context created under VT_DISABLE_CUBLAS has ours only.
  const disabled = cublasDisabledByEnvironment();
  let ownBackend: Backend | null = null;
  if (backend.name === "cuda" && !disabled) {
    try {
      ownBackend = await openOwnKernelsBackend(openOptions);
    } catch (error) {
      logger.warn(
        `matmul: no second backend for our own kernels, timing the default path alone (${(error as Error).message})`,
      );
    }
  }
  try {
    const paths: { path: MatmulPath; backend: Backend }[] =
      backend.name !== "cuda"
        ? [{ path: "default", backend }]
        : disabled
          ? [{ path: "own_kernels", backend }]
          : ownBackend === null
            ? [{ path: "default", backend }]
            : [
                { path: "default", backend },
                { path: "own_kernels", backend: ownBackend },
              ];
    const sweep = runMatmulSweep(paths, setup, baselines, torch);
    printMatmulSweep(
      sweep,
      paths.map((p) => p.path),
      torch !== null,
    );
    const found = backend.name === "cuda" ? cublasLoadable() : false;
    return {
      weight_dtype: setup.weightDtype,
      act_dtype: setup.actDtype,
      cublas_loadable: found,
      paths: Object.fromEntries(
        paths.map(({ path }) => [
          path,
          path === "own_kernels"
            ? "our kernels (a context created with VT_DISABLE_CUBLAS=1)"
            : backend.name === "cuda"
              ? `the library's default: cuBLAS when it loads libcublas at context creation (loadable here: ${found ? "yes" : "no"}; never in the emulation), else our kernels`
              : "our kernels (the CPU backend has no cuBLAS path)",
        ]),
      ),
      results: sweep.rows,
      failed: sweep.failed,
    };
  } finally {
    ownBackend?.close();
  }
}
