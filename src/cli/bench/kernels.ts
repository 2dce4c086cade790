// `vllm-ts bench kernels`: the native ops on the active device. Without --sweep, one quick look at
// every kind of op (kernel-summary.ts); with --sweep, the figures the GPU work is judged by, on a
// model's shapes (Llama-3.1-8B unless --model): decode paged attention as a fraction of the memory
// bandwidth, prefill paged attention and the linear layers' matmuls in TFLOP/s, these two also
// against PyTorch with --torch-baseline. Activations are in the dtype the model computes in on the
// backend (f32 on the CPU, bf16 on CUDA); weights and the KV cache are bf16.
import { defineCommand } from "citty";
import packageJson from "../../../package.json";
import { Backend } from "../../backend/backend.ts";
import type { DType } from "../../backend/dtype.ts";
import { activationDtype } from "../../model/load-model.ts";
import { choice, integer, number, UsageError } from "../engine-args.ts";
import { logger } from "../logger.ts";
import { cublasDisabledByEnvironment, cublasLoadable, openOwnKernelsBackend } from "./cublas-toggle.ts";
import { printDecodeAttentionSweep, runDecodeAttentionSweep, type AttentionSweepSetup, type MemoryBaselines } from "./decode-attention-sweep.ts";
import { peakBandwidth } from "./device-peaks.ts";
import { kernelModel } from "./kernel-model.ts";
import { runKernelSummary } from "./kernel-summary.ts";
import { copyBandwidthGBs, round, type TimingOptions } from "./kernel-timing.ts";
import { printMatmulSweep, runMatmulSweep, type MatmulPath, type MatmulSetup } from "./matmul-sweep.ts";
import { printPrefillAttentionSweep, runPrefillAttentionSweep } from "./prefill-attention-sweep.ts";
import { readTorchBaseline, type TorchBaseline } from "./torch-baseline.ts";

const SWEEPS = ["decode-attention", "prefill-attention", "matmul"] as const;
type Sweep = (typeof SWEEPS)[number];

/** Bf16 weights and KV cache: what the model runs on a GPU. */
const STORAGE_DTYPE: DType = "bf16";

function integerList(name: string, value: string, min: number): number[] {
  const items = value.split(",").map((item) => item.trim()).filter((item) => item.length > 0);
  if (items.length === 0) throw new UsageError(`--${name} must be a comma-separated list of integers, got "${value}"`);
  return items.map((item) => integer(name, item, min));
}

function sweepsOf(value: string): Sweep[] {
  const names = value.split(",").map((name) => name.trim());
  if (names.includes("all")) return [...SWEEPS];
  return [...new Set(names.map((name) => choice("sweep", name, SWEEPS)))];
}

export default defineCommand({
  meta: { name: "kernels", description: "Microbenchmark the native ops on the active device; --sweep for the GPU figures (attention bandwidth, TFLOP/s, vs PyTorch)" },
  args: {
    device: { type: "string", default: "auto", description: "auto | cpu | cuda" },
    threads: { type: "string", default: "0", description: "CPU threads (0 = all cores)" },
    sweep: { type: "string", description: "decode-attention | prefill-attention | matmul | all (comma-separated); without it, a quick look at every op" },
    model: { type: "string", description: "Sweeps: a model folder whose config.json gives the shapes (default: Llama-3.1-8B's)" },
    "batch-sizes": { type: "string", default: "1,2,4,8,16,32,64,128,256", description: "decode-attention: sequences per batch" },
    "context-lens": { type: "string", default: "512,1024,2048,4096,8192,16384,32768", description: "decode-attention: cached tokens per sequence" },
    "prefill-seqs": { type: "string", default: "1,4,16", description: "prefill-attention: sequences per batch" },
    "prefill-lens": { type: "string", default: "512,1024,2048,4096,8192", description: "prefill-attention: prompt tokens per sequence (one causal chunk)" },
    "matmul-rows": { type: "string", default: "1,8,64,256,1024,4096", description: "matmul: rows (tokens) m" },
    "block-size": { type: "string", default: "16", description: "Sweeps: tokens per KV-cache block" },
    "memory-fraction": { type: "string", default: "0.9", description: "Sweeps: a case may use this fraction of the free device memory; larger ones are skipped" },
    "peak-gbs": { type: "string", description: "The device's peak memory bandwidth in GB/s (default: from the table of known GPUs, else none)" },
    "torch-baseline": { type: "string", description: "JSON of bench/torch_baseline.py from the same machine: adds fraction_of_torch to the prefill and matmul sweeps" },
    "min-time-ms": { type: "string", default: "150", description: "Repeat each measurement for at least this long (the fastest sample counts)" },
    repeats: { type: "string", default: "3", description: "Fewest timed samples per measurement, after a warm-up call" },
    "cold-mib": { type: "string", default: "256", description: "Matmul weights (and small KV caches) rotate through this many MiB of copies, so that they come from DRAM" },
    "copy-mib": { type: "string", default: "512", description: "Size of the device copy that measures the bandwidth baseline" },
    "output-json": { type: "string", description: "Write every figure to this JSON file" },
  },
  async run({ args }) {
    try {
      const device = choice("device", args.device, ["auto", "cpu", "cuda"] as const);
      const numThreads = integer("threads", args.threads, 0);
      const timing: TimingOptions = { minSeconds: number("min-time-ms", args["min-time-ms"], 0) / 1000, minRepeats: integer("repeats", args.repeats, 1) };
      const coldBytes = number("cold-mib", args["cold-mib"], 0) * 2 ** 20;
      const copyBytes = Math.floor(number("copy-mib", args["copy-mib"], 1) * 2 ** 20);
      const sweeps = args.sweep === undefined ? null : sweepsOf(args.sweep);
      if (sweeps === null && (args["torch-baseline"] !== undefined || args.model !== undefined)) {
        throw new UsageError("--torch-baseline and --model apply to --sweep only");
      }
      const torch = args["torch-baseline"] === undefined ? null : readTorchBaseline(args["torch-baseline"]);
      const model = await kernelModel(args.model);
      const memoryFraction = number("memory-fraction", args["memory-fraction"], 0);
      if (memoryFraction <= 0 || memoryFraction > 1) throw new UsageError(`--memory-fraction must be in (0, 1], got ${memoryFraction}`);
      const grids = {
        batchSizes: integerList("batch-sizes", args["batch-sizes"], 1),
        contextLens: integerList("context-lens", args["context-lens"], 1),
        prefillSeqs: integerList("prefill-seqs", args["prefill-seqs"], 1),
        prefillLens: integerList("prefill-lens", args["prefill-lens"], 1),
        matmulRows: integerList("matmul-rows", args["matmul-rows"], 1),
      };
      const blockSize = integer("block-size", args["block-size"], 1);
      const peakOverride = args["peak-gbs"] === undefined ? null : number("peak-gbs", args["peak-gbs"], 1e-9);

      const backend = await Backend.open({ device, numThreads });
      try {
        const actDtype = activationDtype(backend, STORAGE_DTYPE);
        const peak = peakOverride !== null ? { entry: "--peak-gbs", bandwidthGBs: peakOverride } : peakBandwidth(backend.deviceName);
        logger.info(`bench kernels on ${backend.name} (${backend.deviceName}), activations ${actDtype}`);
        if (torch && torch.device !== backend.deviceName) {
          logger.warn(`--torch-baseline was measured on "${torch.device}", this run is on "${backend.deviceName}": fractions of torch compare different machines`);
        }
        const copyGBps = copyBandwidthGBs(backend, timing, copyBytes);
        const baselines: MemoryBaselines = { copyBandwidthGBs: copyGBps, peakBandwidthGBs: peak?.bandwidthGBs ?? null };
        console.log(
          `device ${backend.name} (${backend.deviceName}); activations ${actDtype}; copy bandwidth ${copyGBps.toFixed(1)} GB/s (read + write); ` +
            `peak bandwidth ${peak ? `${peak.bandwidthGBs} GB/s (${peak.entry})` : "unknown"}`,
        );
        const header = {
          version: packageJson.version,
          command: "bench kernels",
          mode: sweeps === null ? "summary" : "sweep",
          device: { backend: backend.name, name: backend.deviceName, peak_bandwidth_gbs: peak?.bandwidthGBs ?? null, peak_bandwidth_entry: peak?.entry ?? null },
          act_dtype: actDtype,
          config: { min_time_ms: timing.minSeconds * 1000, repeats: timing.minRepeats, cold_mib: coldBytes / 2 ** 20, copy_mib: copyBytes / 2 ** 20 },
        };

        let body: object;
        if (sweeps === null) {
          const summary = runKernelSummary(backend, timing, actDtype, coldBytes, copyGBps);
          body = { ...summary, baselines: { ...summary.baselines, peak_bandwidth_gbs: baselines.peakBandwidthGBs } };
        } else {
          const setup: AttentionSweepSetup = { model, blockSize, actDtype, cacheDtype: STORAGE_DTYPE, timing, memoryFraction };
          const sections: Record<string, unknown> = {};
          if (sweeps.includes("decode-attention")) {
            const grid = { batchSizes: grids.batchSizes, contextLens: grids.contextLens, coldBytes };
            const sweep = runDecodeAttentionSweep(backend, setup, grid, baselines);
            printDecodeAttentionSweep(sweep, grid, baselines);
            sections.decode_attention = { cache_dtype: STORAGE_DTYPE, ...sweep };
          }
          if (sweeps.includes("prefill-attention")) {
            const sweep = runPrefillAttentionSweep(backend, setup, { numSeqs: grids.prefillSeqs, queryLens: grids.prefillLens }, torch);
            printPrefillAttentionSweep(sweep, torch !== null);
            sections.prefill_attention = { cache_dtype: STORAGE_DTYPE, ...sweep };
          }
          if (sweeps.includes("matmul")) {
            sections.matmul = await matmulSection(backend, { device, numThreads }, {
              model, rowCounts: grids.matmulRows, weightDtype: STORAGE_DTYPE, actDtype, coldBytes, timing,
            }, baselines, torch);
          }
          body = {
            model: { name: model.name, hidden_size: model.hiddenSize, intermediate_size: model.intermediateSize, num_q_heads: model.numQHeads, num_kv_heads: model.numKvHeads, head_dim: model.headDim, block_size: blockSize },
            baselines: {
              copy_bandwidth_gbs: round(copyGBps),
              peak_bandwidth_gbs: baselines.peakBandwidthGBs,
              ...(torch ? { torch: { file: args["torch-baseline"], device: torch.device, torch_version: torch.torch_version } } : {}),
            },
            ...sections,
          };
        }
        if (args["output-json"]) await Bun.write(args["output-json"], `${JSON.stringify({ ...header, ...body, date: new Date().toISOString() }, null, 2)}\n`);
      } finally {
        backend.close();
      }
    } catch (error) {
      logger.error(error instanceof Error ? error.message : String(error));
      process.exit(1);
    }
  },
});

/** The matmul sweep on every path this backend has: cuBLAS (when found) and our own kernels. */
async function matmulSection(
  backend: Backend,
  openOptions: { device: "auto" | "cpu" | "cuda"; numThreads: number },
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
      logger.warn(`matmul: no second backend for our own kernels, timing the default path alone (${(error as Error).message})`);
    }
  }
  try {
    const paths: { path: MatmulPath; backend: Backend }[] =
      backend.name !== "cuda" ? [{ path: "default", backend }]
      : disabled ? [{ path: "own_kernels", backend }]
      : ownBackend === null ? [{ path: "default", backend }]
      : [{ path: "default", backend }, { path: "own_kernels", backend: ownBackend }];
    const sweep = runMatmulSweep(paths, setup, baselines, torch);
    printMatmulSweep(sweep, paths.map((p) => p.path), torch !== null);
    const found = backend.name === "cuda" ? cublasLoadable() : false;
    return {
      weight_dtype: setup.weightDtype,
      act_dtype: setup.actDtype,
      cublas_loadable: found,
      paths: Object.fromEntries(paths.map(({ path }) => [path,
        path === "own_kernels" ? "our kernels (a context created with VT_DISABLE_CUBLAS=1)"
        : backend.name === "cuda" ? `the library's default: cuBLAS when it loads libcublas at context creation (loadable here: ${found ? "yes" : "no"}; never in the emulation), else our kernels`
        : "our kernels (the CPU backend has no cuBLAS path)"])),
      results: sweep.rows,
      failed: sweep.failed,
    };
  } finally {
    ownBackend?.close();
  }
}
