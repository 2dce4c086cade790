// `vllm-ts bench kernels`: the native ops on the active device, a quick look at every op or, with
// --sweep, the GPU figures on a model's shapes (src/bench/kernels/benchmark.ts runs them).
import { defineCommand } from "citty";
import { ALL_QUANT_FORMATS } from "../../backend/weight-format.ts";
import { KERNEL_SWEEPS, type KernelSweep, runKernelsBenchmark } from "../../bench/kernels/benchmark.ts";
import { MIXTRAL_8X7B_MOE, MOE_SHAPES, type MoeShape, QWEN3_30B_A3B_MOE } from "../../bench/kernels/moe-sweep.ts";
import { UsageError } from "../../usage-error.ts";
import { choice, integer, number } from "../engine-args.ts";
import { runBench } from "./run-bench.ts";

function integerList(name: string, value: string, min: number): number[] {
  const items = value
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
  if (items.length === 0) throw new UsageError(`--${name} must be a comma-separated list of integers, got "${value}"`);
  return items.map((item) => integer(name, item, min));
}

function moeShapesOf(value: string): MoeShape[] {
  const names = MOE_SHAPES.map((shape) => shape.name);
  return value.split(",").map((name) => MOE_SHAPES[names.indexOf(choice("moe-model", name.trim(), names))]!);
}

function sweepsOf(value: string): KernelSweep[] {
  const names = value.split(",").map((name) => name.trim());
  if (names.includes("all")) return [...KERNEL_SWEEPS];
  return [...new Set(names.map((name) => choice("sweep", name, KERNEL_SWEEPS)))];
}

export default defineCommand({
  meta: {
    name: "kernels",
    description:
      "Microbenchmark the native ops on the active device; --sweep for the GPU figures (attention bandwidth, TFLOP/s, vs PyTorch)",
  },
  args: {
    device: { type: "string", default: "auto", description: "auto | cpu | cuda" },
    threads: { type: "string", default: "0", description: "CPU threads (0 = all cores)" },
    sweep: {
      type: "string",
      description:
        "decode-attention | prefill-attention | matmul | moe | all (comma-separated); without it, a quick look at every op",
    },
    model: {
      type: "string",
      description: "Sweeps: a model folder whose config.json gives the shapes (default: Llama-3.1-8B's)",
    },
    "batch-sizes": {
      type: "string",
      default: "1,2,4,8,16,32,64,128,256",
      description: "decode-attention: sequences per batch",
    },
    "context-lens": {
      type: "string",
      default: "512,1024,2048,4096,8192,16384,32768",
      description: "decode-attention: cached tokens per sequence",
    },
    "prefill-seqs": { type: "string", default: "1,4,16", description: "prefill-attention: sequences per batch" },
    "prefill-lens": {
      type: "string",
      default: "512,1024,2048,4096,8192",
      description: "prefill-attention: prompt tokens per sequence (one causal chunk)",
    },
    "matmul-rows": { type: "string", default: "1,8,64,256,1024,4096", description: "matmul: rows (tokens) m" },
    "moe-tokens": { type: "string", default: "1,256", description: "moe: tokens per call (each in top_k slots)" },
    "moe-model": {
      type: "string",
      default: [QWEN3_30B_A3B_MOE, MIXTRAL_8X7B_MOE].map((shape) => shape.name).join(","),
      description: `moe: the expert shapes, of ${MOE_SHAPES.map((shape) => shape.name).join(", ")}`,
    },
    "weight-format": {
      type: "string",
      default: "bf16",
      description: `matmul and moe: the weights' format, bf16 or quantized (${ALL_QUANT_FORMATS.join(", ")})`,
    },
    "block-size": { type: "string", default: "16", description: "Sweeps: tokens per KV-cache block" },
    "memory-fraction": {
      type: "string",
      default: "0.9",
      description: "Sweeps: a case may use this fraction of the free device memory; larger ones are skipped",
    },
    "peak-gbs": {
      type: "string",
      description: "The device's peak memory bandwidth in GB/s (default: from the table of known GPUs, else none)",
    },
    "torch-baseline": {
      type: "string",
      description:
        "JSON of bench/torch_baseline.py from the same machine: adds fraction_of_torch to the prefill and matmul sweeps",
    },
    "min-time-ms": {
      type: "string",
      default: "150",
      description: "Repeat each measurement for at least this long (the fastest sample counts)",
    },
    repeats: {
      type: "string",
      default: "3",
      description: "Fewest timed samples per measurement, after a warm-up call",
    },
    "cold-mib": {
      type: "string",
      default: "256",
      description:
        "Matmul weights (and small KV caches) rotate through this many MiB of copies, so that they come from DRAM",
    },
    "copy-mib": {
      type: "string",
      default: "512",
      description: "Size of the device copy that measures the bandwidth baseline",
    },
    "output-json": { type: "string", description: "Write every figure to this JSON file" },
  },
  run: ({ args }) =>
    runBench(() => {
      const device = choice("device", args.device, ["auto", "cpu", "cuda"] as const);
      const numThreads = integer("threads", args.threads, 0);
      const timing = {
        minSeconds: number("min-time-ms", args["min-time-ms"], 0) / 1000,
        minRepeats: integer("repeats", args.repeats, 1),
      };
      const coldBytes = number("cold-mib", args["cold-mib"], 0) * 2 ** 20;
      const copyBytes = Math.floor(number("copy-mib", args["copy-mib"], 1) * 2 ** 20);
      const sweeps = args.sweep === undefined ? null : sweepsOf(args.sweep);
      if (sweeps === null && (args["torch-baseline"] !== undefined || args.model !== undefined)) {
        throw new UsageError("--torch-baseline and --model apply to --sweep only");
      }
      const memoryFraction = number("memory-fraction", args["memory-fraction"], 0);
      if (memoryFraction <= 0 || memoryFraction > 1)
        throw new UsageError(`--memory-fraction must be in (0, 1], got ${memoryFraction}`);
      return runKernelsBenchmark({
        backend: { device, numThreads },
        timing,
        coldBytes,
        copyBytes,
        sweeps,
        weightFormat: choice("weight-format", args["weight-format"], ["bf16", ...ALL_QUANT_FORMATS] as const),
        torchBaseline: args["torch-baseline"],
        modelDir: args.model,
        memoryFraction,
        grids: {
          batchSizes: integerList("batch-sizes", args["batch-sizes"], 1),
          contextLens: integerList("context-lens", args["context-lens"], 1),
          prefillSeqs: integerList("prefill-seqs", args["prefill-seqs"], 1),
          prefillLens: integerList("prefill-lens", args["prefill-lens"], 1),
          matmulRows: integerList("matmul-rows", args["matmul-rows"], 1),
          moeTokens: integerList("moe-tokens", args["moe-tokens"], 1),
        },
        moeShapes: moeShapesOf(args["moe-model"]),
        blockSize: integer("block-size", args["block-size"], 1),
        peakGBs: args["peak-gbs"] === undefined ? null : number("peak-gbs", args["peak-gbs"], 1e-9),
        outputJson: args["output-json"],
      });
    }),
});
