// The stages that measure: decode paged-attention bandwidth, prefill attention and matmul against
// PyTorch, CUDA graphs against eager decode, async scheduling against steps in turns, end-to-end
// throughput against Hugging Face generate, and nano-vllm's workload. Each is a fraction of a baseline taken in the same run; a dry run
// runs the same commands on tiny shapes (figures meaningless, commands proven).

import { join } from "node:path";
import type { DecodeAttentionRow } from "../../src/bench/kernels/decode-attention-sweep.ts";
import { prefillFlops } from "../../src/bench/kernels/prefill-attention-sweep.ts";
import { round } from "../../src/bench/kernels/timing.ts";
import { readTorchBaseline } from "../../src/bench/kernels/torch-baseline.ts";
import { QUICK_TIMING_FLAGS } from "../../test/helpers/tiny-kernel-model.ts";
import type { KernelsReport, LatencyReport, ThroughputReport } from "./reports.ts";
import {
  type CheckContext,
  commandStatus,
  type Figure,
  failureLine,
  readJson,
  type Stage,
  type StageOutcome,
  type StageRun,
  vllm,
} from "./stage.ts";

const DRY_RUN_SKIP_TORCH = "needs python3 with torch (a GPU machine has it)";

function minOf(values: (number | null | undefined)[]): number | null {
  const numbers = values.filter((v): v is number => typeof v === "number" && Number.isFinite(v));
  return numbers.length === 0 ? null : Math.min(...numbers);
}

function maxOf(values: (number | null | undefined)[]): number | null {
  const numbers = values.filter((v): v is number => typeof v === "number" && Number.isFinite(v));
  return numbers.length === 0 ? null : Math.max(...numbers);
}

/**
 * The fraction of peak bandwidth of rows run one after the other, as a decode step runs a layer's
 * matmuls: all their bytes over all their time, i.e. each row's fraction weighted by its time.
 */
export function fractionTogether(rows: { time_us: number; fraction_of_peak_bandwidth?: number }[]): number | null {
  const timed = rows.filter((r) => typeof r.fraction_of_peak_bandwidth === "number");
  if (timed.length === 0) return null;
  const time = timed.reduce((sum, r) => sum + r.time_us, 0);
  return Number((timed.reduce((sum, r) => sum + r.fraction_of_peak_bandwidth! * r.time_us, 0) / time).toFixed(4));
}

/** Runs one vllm-ts command that writes `json`, and turns its report into the stage's outcome. */
async function benchStage<Report>(
  context: CheckContext,
  run: StageRun,
  args: string[],
  json: string,
  read: (report: Report) => Omit<StageOutcome, "status"> & { status?: StageOutcome["status"] },
): Promise<StageOutcome> {
  const result = await vllm(context, run, [...args, "--output-json", json]);
  if (result.exitCode !== 0) return { status: commandStatus([result]), summary: failureLine(result) };
  return { status: "passed", ...read(readJson<Report>(json)) };
}

const decodeAttention: Stage = {
  name: "decode-attention",
  title: "Decode paged attention: KV bandwidth",
  limitSeconds: 45,
  dryLimitSeconds: 120,
  run(context, run) {
    const grid = context.dryRun
      ? ["--model", context.models.llama, "--batch-sizes", "1,2", "--context-lens", "16,64", ...QUICK_TIMING_FLAGS]
      : ["--batch-sizes", "1,16,64,256", "--context-lens", "1024,8192,32768"];
    return benchStage(
      context,
      run,
      ["bench", "kernels", "--device", "cuda", "--sweep", "decode-attention", ...grid],
      join(context.raw, "decode-attention.json"),
      (report: KernelsReport) => {
        const rows = report.decode_attention.results;
        const ofPeak = (r: DecodeAttentionRow | undefined) => r?.fraction_of_peak_bandwidth ?? null;
        const large = rows.filter((r) => r.batch_size >= 32 && r.context_len >= 4096);
        const figures: Record<string, Figure> = {
          fraction_of_peak_large_min: minOf(large.map(ofPeak)),
          fraction_of_peak_large_max: maxOf(large.map(ofPeak)),
          fraction_of_copy_large_min: minOf(large.map((r) => r.fraction_of_copy_bandwidth)),
          fraction_of_peak_b256_c32768: ofPeak(rows.find((r) => r.batch_size === 256 && r.context_len === 32768)),
          kv_read_gbs_b1_c1024: rows.find((r) => r.batch_size === 1 && r.context_len === 1024)?.kv_read_gbs ?? null,
        };
        for (const r of rows) figures[`b${r.batch_size}_c${r.context_len}`] = ofPeak(r) ?? r.fraction_of_copy_bandwidth;
        const failed = report.decode_attention.failed.length;
        return {
          status: failed > 0 ? "failed" : "passed",
          summary: `batch >= 32 x context >= 4096: ${figures.fraction_of_peak_large_min ?? "-"} .. ${figures.fraction_of_peak_large_max ?? "-"} of peak; ${rows.length} cases${failed ? `, ${failed} failed` : ""}`,
          figures,
        };
      },
    );
  },
};

const PREFILL_GRID = ["--prefill-seqs", "1,4,16", "--prefill-lens", "512,2048,8192", "--matmul-rows", "1,64,256,4096"];

const torchBaseline: Stage = {
  name: "torch-baseline",
  title: "PyTorch baseline: SDPA and torch.matmul on the same shapes",
  limitSeconds: 60,
  dryLimitSeconds: 60,
  async run(context, run) {
    if (context.python === null) return { status: context.dryRun ? "skipped" : "failed", summary: DRY_RUN_SKIP_TORCH };
    const json = join(context.raw, "torch-baseline.json");
    const result = await run.command([
      context.python,
      join(context.kit, "torch_baseline.py"),
      ...PREFILL_GRID,
      "--output-json",
      json,
    ]);
    if (result.exitCode !== 0) return { status: commandStatus([result]), summary: failureLine(result) };
    const torch = readTorchBaseline(json);
    const figures = {
      sdpa_tflops_max: round(
        maxOf(
          torch.prefill_attention.map(
            (r) => prefillFlops(r.num_seqs, r.query_len, r.num_q_heads, r.head_dim) / r.time_us / 1e6,
          ),
        ) ?? 0,
        1,
      ),
      matmul_tflops_max: round(maxOf(torch.matmul.map((r) => (2 * r.m * r.n * r.k) / r.time_us / 1e6)) ?? 0, 1),
      torch: torch.torch_version,
    };
    return {
      status: "passed",
      summary: `torch ${figures.torch}: SDPA up to ${figures.sdpa_tflops_max} TFLOP/s, matmul up to ${figures.matmul_tflops_max} TFLOP/s`,
      figures,
    };
  },
};

const prefillAndMatmul: Stage = {
  name: "prefill-matmul",
  title: "Prefill attention and matmul, against PyTorch",
  limitSeconds: 60,
  dryLimitSeconds: 120,
  run(context, run) {
    const torch = join(context.raw, "torch-baseline.json");
    const haveTorch = context.python !== null;
    const grid = context.dryRun
      ? [
          "--model",
          context.models.llama,
          "--prefill-seqs",
          "1",
          "--prefill-lens",
          "32",
          "--matmul-rows",
          "1,16",
          ...QUICK_TIMING_FLAGS,
        ]
      : PREFILL_GRID;
    const args = [
      "bench",
      "kernels",
      "--device",
      "cuda",
      "--sweep",
      "prefill-attention,matmul",
      ...grid,
      ...(haveTorch ? ["--torch-baseline", torch] : []),
    ];
    return benchStage(context, run, args, join(context.raw, "prefill-matmul.json"), (report: KernelsReport) => {
      const prefill = report.prefill_attention.results;
      const matmul = report.matmul.results;
      const large = (path: string) => matmul.filter((r) => r.path === path && r.m >= 256);
      const figures: Record<string, Figure> = {
        prefill_fraction_of_torch_min: minOf(prefill.map((r) => r.fraction_of_torch)),
        prefill_fraction_of_torch_16x8192:
          prefill.find((r) => r.num_seqs === 16 && r.query_len === 8192)?.fraction_of_torch ?? null,
        prefill_tflops_max: maxOf(prefill.map((r) => r.tflops)),
        matmul_default_fraction_of_torch_min: minOf(large("default").map((r) => r.fraction_of_torch)),
        matmul_own_fraction_of_torch_min: minOf(large("own_kernels").map((r) => r.fraction_of_torch)),
        matmul_own_m1_fraction_of_peak_min: minOf(
          matmul.filter((r) => r.path === "own_kernels" && r.m === 1).map((r) => r.fraction_of_peak_bandwidth),
        ),
        matmul_own_m1_fraction_of_peak_max: maxOf(
          matmul.filter((r) => r.path === "own_kernels" && r.m === 1).map((r) => r.fraction_of_peak_bandwidth),
        ),
        cublas_loadable: report.matmul.cublas_loadable,
      };
      const failed = report.prefill_attention.failed.length + report.matmul.failed.length;
      return {
        status: failed > 0 ? "failed" : "passed",
        summary: `prefill ${figures.prefill_tflops_max} TFLOP/s at best, ${figures.prefill_fraction_of_torch_min ?? "-"} of torch at worst; matmul m >= 256 default ${figures.matmul_default_fraction_of_torch_min ?? "-"}, own ${figures.matmul_own_fraction_of_torch_min ?? "-"} of torch${haveTorch ? "" : ` (${DRY_RUN_SKIP_TORCH})`}`,
        figures,
      };
    });
  },
};

const quantizedMatmul: Stage = {
  name: "quantized-matmul",
  title: "Q4_K matmul: weight bandwidth at m = 1, TFLOP/s at m = 256",
  limitSeconds: 30,
  dryLimitSeconds: 60,
  run(context, run) {
    // The rehearsal's tiny model has rows of 128 values, too short for Q4_K's blocks of 256.
    const grid = context.dryRun
      ? ["--weight-format", "q4_0", "--model", context.models.llama, "--matmul-rows", "1,16", ...QUICK_TIMING_FLAGS]
      : ["--weight-format", "q4_k", "--matmul-rows", "1,256"];
    const args = ["bench", "kernels", "--device", "cuda", "--sweep", "matmul", ...grid];
    return benchStage(context, run, args, join(context.raw, "quantized-matmul.json"), (report: KernelsReport) => {
      const rows = report.matmul.results.filter((r) => r.path === "default");
      const decode = rows.filter((r) => r.m === 1);
      const figures: Record<string, Figure> = {
        q4k_m1_fraction_of_peak_min: minOf(decode.map((r) => r.fraction_of_peak_bandwidth)),
        q4k_m1_fraction_of_peak_max: maxOf(decode.map((r) => r.fraction_of_peak_bandwidth)),
        q4k_m1_fraction_of_peak_layers: fractionTogether(decode),
        q4k_m1_weight_gbs_max: maxOf(decode.map((r) => r.weight_gbs)),
        q4k_tflops_max: maxOf(rows.filter((r) => r.m > 1).map((r) => r.tflops)),
      };
      return {
        status: report.matmul.failed.length > 0 ? "failed" : "passed",
        summary: `Q4_K at m = 1: ${figures.q4k_m1_fraction_of_peak_min ?? "-"} to ${figures.q4k_m1_fraction_of_peak_max ?? "-"} of peak bandwidth, ${figures.q4k_m1_fraction_of_peak_layers ?? "-"} over the four layers (target 0.7); ${figures.q4k_tflops_max} TFLOP/s at best`,
        figures,
      };
    });
  },
};

/**
 * The experts' matmul on Qwen3-30B-A3B's and Mixtral-8x7B's shapes: bf16 experts ("moe-matmul")
 * or Q4_K ones ("moe-matmul-q4k", after the rest: the figures of the issues come first).
 */
function moeMatmulStage(format: "bf16" | "q4_k"): Stage {
  const name = format === "bf16" ? "moe-matmul" : "moe-matmul-q4k";
  const label = format === "bf16" ? "" : "Q4_K ";
  return {
    name,
    title: `${label}Mixture-of-experts matmul: the used experts' weight bandwidth at 1 token, TFLOP/s at 256`,
    limitSeconds: 60,
    dryLimitSeconds: 60,
    run(context, run) {
      // The rehearsal's tiny experts have rows of 32 and 64 values, too short for Q4_K's blocks.
      const grid = context.dryRun
        ? ["--moe-model", "tiny", "--moe-tokens", "1,4", ...QUICK_TIMING_FLAGS]
        : ["--moe-model", "qwen3-30b-a3b,mixtral-8x7b", "--moe-tokens", "1,256"];
      const weights = ["--weight-format", format === "q4_k" && context.dryRun ? "q4_0" : format];
      const args = ["bench", "kernels", "--device", "cuda", "--sweep", "moe", ...weights, ...grid];
      return benchStage(context, run, args, join(context.raw, `${name}.json`), (report: KernelsReport) => {
        const rows = report.moe.results;
        const single = rows.filter((r) => r.tokens === 1);
        const figures: Record<string, Figure> = {
          moe_t1_fraction_of_peak_min: minOf(single.map((r) => r.fraction_of_peak_bandwidth)),
          moe_t1_fraction_of_peak_max: maxOf(single.map((r) => r.fraction_of_peak_bandwidth)),
          moe_t1_weight_gbs_max: maxOf(single.map((r) => r.weight_gbs)),
          moe_tflops_max: maxOf(rows.filter((r) => r.tokens > 1).map((r) => r.tflops)),
        };
        return {
          status: report.moe.failed.length > 0 ? "failed" : "passed",
          summary: `${label}at 1 token: ${figures.moe_t1_fraction_of_peak_min ?? "-"} to ${figures.moe_t1_fraction_of_peak_max ?? "-"} of peak bandwidth; ${figures.moe_tflops_max} TFLOP/s at best`,
          figures,
        };
      });
    },
  };
}

/** Dummy weights of a real model's shapes, the embedded tokenizer (the vocabulary is Qwen's). */
const dummyModel = (model: string) => [
  model,
  "--load-format",
  "dummy",
  "--tokenizer",
  "vllm-ts-demo",
  "--device",
  "cuda",
];

/**
 * Decode milliseconds per token of `bench latency` at each batch size, without and with `flag`:
 * the batch's time after its last first token, per later token. Null and the failed command's
 * outcome when one fails.
 */
async function decodeWithAndWithout(
  context: CheckContext,
  run: StageRun,
  model: string,
  flag: string,
  batches: number[],
): Promise<{ perToken: Map<number, { without: number; with: number }> } | { failed: StageOutcome }> {
  const [inputLen, outputLen] = context.dryRun ? [8, 4] : [128, 64];
  const perToken = new Map<number, { without: number; with: number }>();
  for (const batch of batches) {
    const times: number[] = [];
    for (const withFlag of [false, true]) {
      const json = join(context.raw, `latency-b${batch}${withFlag ? flag : ""}.json`);
      const args = [
        "bench",
        "latency",
        ...dummyModel(model),
        "--batch-size",
        String(batch),
        "--input-len",
        String(inputLen),
        "--output-len",
        String(outputLen),
        "--num-iters",
        "3",
        "--num-iters-warmup",
        "1",
        "--max-num-seqs",
        String(Math.max(...batches)),
        "--max-model-len",
        "1024",
        ...(withFlag ? [flag] : []),
        "--output-json",
        json,
      ];
      const result = await vllm(context, run, args);
      if (result.exitCode !== 0)
        return {
          failed: {
            status: commandStatus([result]),
            summary: `batch ${batch}${withFlag ? ` ${flag}` : ""}: ${failureLine(result)}`,
          },
        };
      const { latency, timeToFirstTokenOfBatch } = readJson<LatencyReport>(json).results;
      times.push((latency.mean - timeToFirstTokenOfBatch.mean) / (outputLen - 1));
    }
    perToken.set(batch, { without: times[0]!, with: times[1]! });
  }
  return { perToken };
}

/**
 * A stage that times decode per token with and without `flag` at batch 1 and a larger batch:
 * each side's ms per token under its label, and the slower side's over the faster one's.
 */
function flagComparisonStage(spec: {
  name: string;
  title: string;
  model: (context: CheckContext) => string;
  flag: string;
  largeBatch: number;
  /** Figure labels (underscores read as spaces in the summary). */
  labels: { without: string; with: string };
  /** Which side is expected to be slower: the ratio is slower over faster. */
  slower: "with" | "without";
}): Stage {
  return {
    name: spec.name,
    title: spec.title,
    limitSeconds: 60,
    dryLimitSeconds: 120,
    async run(context, run) {
      const batches = context.dryRun ? [1, 4] : [1, spec.largeBatch];
      const measured = await decodeWithAndWithout(context, run, spec.model(context), spec.flag, batches);
      if ("failed" in measured) return measured.failed;
      const [slow, fast] = spec.slower === "with" ? (["with", "without"] as const) : (["without", "with"] as const);
      const [slowLabel, fastLabel] = [spec.labels[slow], spec.labels[fast]];
      const figures: Record<string, Figure> = {};
      const lines: string[] = [];
      const text = (label: string) => label.replaceAll("_", " ");
      for (const [batch, perToken] of measured.perToken) {
        const slowMs = round(perToken[slow] * 1000, 3);
        const fastMs = round(perToken[fast] * 1000, 3);
        const ratio = round(perToken[slow] / perToken[fast], 2);
        figures[`b${batch}_ms_per_token_${slowLabel}`] = slowMs;
        figures[`b${batch}_ms_per_token_${fastLabel}`] = fastMs;
        figures[`b${batch}_${slowLabel}_over_${fastLabel}`] = ratio;
        lines.push(`batch ${batch}: ${slowMs} ms ${text(slowLabel)}, ${fastMs} ms ${text(fastLabel)} (${ratio}x)`);
      }
      return { status: "passed", summary: lines.join("; "), figures };
    },
  };
}

const graphs = flagComparisonStage({
  name: "graphs",
  title: "CUDA graphs against eager decode steps",
  model: (context) => context.models.llama,
  flag: "--enforce-eager",
  largeBatch: 32,
  labels: { without: "graphs", with: "eager" },
  slower: "with",
});

/** A small model's decode step is short, so the host's share of it is the largest there. */
const asyncScheduling = flagComparisonStage({
  name: "async-scheduling",
  title: "Async scheduling (host work beside the device's step) against steps in turns, Qwen3-0.6B shape",
  model: (context) => context.models.qwen3,
  flag: "--async-scheduling",
  largeBatch: 64,
  labels: { without: "in_turns", with: "async" },
  slower: "without",
});

/** The seed's comparison: the same random requests through vllm-ts and through HF generate. */
const THROUGHPUT = { numPrompts: 256, inputLen: 512, outputLen: 256, hfBatchSize: 128 };

const throughput: Stage = {
  name: "throughput",
  title: "End-to-end output tokens/s on a dummy Llama-3.1-8B",
  limitSeconds: 75,
  dryLimitSeconds: 120,
  run(context, run) {
    const shape = context.dryRun
      ? ["--num-prompts", "8", "--input-len", "16", "--output-len", "8"]
      : [
          "--num-prompts",
          String(THROUGHPUT.numPrompts),
          "--input-len",
          String(THROUGHPUT.inputLen),
          "--output-len",
          String(THROUGHPUT.outputLen),
        ];
    const args = [
      "bench",
      "throughput",
      ...dummyModel(context.models.llama),
      ...shape,
      "--max-num-seqs",
      "256",
      "--max-num-batched-tokens",
      "8192",
      "--max-model-len",
      "1024",
    ];
    return benchStage(context, run, args, join(context.raw, "throughput.json"), (report: ThroughputReport) => ({
      summary: `${round(report.results.outputTokensPerSecond, 1)} output tokens/s (${report.results.numRequests} requests)`,
      figures: {
        output_tokens_per_second: round(report.results.outputTokensPerSecond, 1),
        elapsed_seconds: round(report.results.elapsedSeconds, 2),
      },
    }));
  },
};

const hfGenerate: Stage = {
  name: "hf-generate",
  title: "Hugging Face generate on the same requests, static batches",
  limitSeconds: 75,
  dryLimitSeconds: 60,
  async run(context, run) {
    if (context.python === null) return { status: context.dryRun ? "skipped" : "failed", summary: DRY_RUN_SKIP_TORCH };
    const json = join(context.raw, "hf-generate.json");
    const { numPrompts, inputLen, outputLen, hfBatchSize } = THROUGHPUT;
    const result = await run.command([
      context.python,
      join(context.kit, "hf_generate_baseline.py"),
      context.models.llama,
      "--num-prompts",
      String(numPrompts),
      "--input-len",
      String(inputLen),
      "--output-len",
      String(outputLen),
      "--batch-size",
      String(hfBatchSize),
      "--output-json",
      json,
    ]);
    if (result.exitCode !== 0) return { status: commandStatus([result]), summary: failureLine(result) };
    const hf = readJson<ThroughputReport>(json).results.outputTokensPerSecond;
    let ours: number | null = null;
    try {
      ours = readJson<ThroughputReport>(join(context.raw, "throughput.json")).results.outputTokensPerSecond;
    } catch {
      // The throughput stage did not finish: HF's figure stands alone.
    }
    return {
      status: "passed",
      summary: `${round(hf, 1)} output tokens/s at batch ${hfBatchSize}${ours ? `; vllm-ts / HF = ${round(ours / hf, 2)}x` : ""}`,
      figures: { output_tokens_per_second: round(hf, 1), vllm_ts_over_hf: ours ? round(ours / hf, 2) : null },
    };
  },
};

const nanoVllm: Stage = {
  name: "nano-vllm",
  title: "nano-vllm's workload: Qwen3-0.6B shape, 256 requests, input and output 100..1024",
  limitSeconds: 75,
  dryLimitSeconds: 120,
  run(context, run) {
    const shape = context.dryRun
      ? ["--num-prompts", "8", "--input-len", "4:32", "--output-len", "4:32"]
      : ["--num-prompts", "256", "--input-len", "100:1024", "--output-len", "100:1024"];
    const args = [
      "bench",
      "throughput",
      ...dummyModel(context.models.qwen3),
      ...shape,
      "--max-num-seqs",
      "512",
      "--max-num-batched-tokens",
      "16384",
      "--max-model-len",
      "4096",
    ];
    return benchStage(context, run, args, join(context.raw, "nano-vllm.json"), (report: ThroughputReport) => ({
      summary: `${round(report.results.outputTokensPerSecond, 1)} output tokens/s, ${report.results.outputTokens} tokens in ${round(report.results.elapsedSeconds, 2)} s`,
      figures: {
        output_tokens_per_second: round(report.results.outputTokensPerSecond, 1),
        elapsed_seconds: round(report.results.elapsedSeconds, 2),
      },
    }));
  },
};

export const figureStages: Stage[] = [
  decodeAttention,
  torchBaseline,
  prefillAndMatmul,
  quantizedMatmul,
  moeMatmulStage("bf16"),
  throughput,
  hfGenerate,
  graphs,
  asyncScheduling,
  nanoVllm,
  moeMatmulStage("q4_k"),
];
