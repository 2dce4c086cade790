// llama.cpp's side of the benchmark: its own tools (`make llama-cpp-tools` compiles them from the
// sources of the prebuilt libraries' build), their command lines and their machine-readable outputs
// (llama-bench's JSON lines, llama-batched-bench's --output-format jsonl).
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

const TOOLS_DIR = resolve(import.meta.dir, "../../build/llama.cpp/lib");
const LLAMA_BENCH = join(TOOLS_DIR, "llama-bench");
const LLAMA_BATCHED_BENCH = join(TOOLS_DIR, "llama-batched-bench");
export const LLAMA_QUANTIZE = join(TOOLS_DIR, "llama-quantize");

/** Why the tools cannot run, or null when they can. */
export function missingToolsReason(): string | null {
  const missing = [LLAMA_BENCH, LLAMA_BATCHED_BENCH, LLAMA_QUANTIZE].filter((tool) => !existsSync(tool));
  return missing.length === 0
    ? null
    : `llama.cpp's tools are not built (run \`make llama-cpp-tools\`): ${missing.join(", ")}`;
}

/** One test of llama-bench: a prompt of nPrompt tokens, or nGen generated one at a time. */
export interface LlamaBenchTest {
  nPrompt: number;
  nGen: number;
  /** Mean tokens/s over llama-bench's repetitions. */
  tokensPerSecond: number;
  /** The rest of the line: llama-bench's set-up (build, CPU, batch sizes, flash attention, KV types). */
  setup: Record<string, unknown>;
}

export interface LlamaBenchOptions {
  promptTokens: number[];
  generatedTokens: number[];
  threads: number;
  repetitions: number;
}

/** llama-bench runs a prompt-only test per -p value and a generation-only test per -n value. */
export function llamaBenchArgs(file: string, options: LlamaBenchOptions): string[] {
  return [
    LLAMA_BENCH,
    ...["-m", file, "-t", String(options.threads), "-r", String(options.repetitions)],
    ...["-p", options.promptTokens.join(",") || "0", "-n", options.generatedTokens.join(",") || "0", "-o", "jsonl"],
  ];
}

/** The JSON objects among the lines of a tool's output, which may be interleaved with its log. */
function jsonLines(text: string): Record<string, unknown>[] {
  const objects: Record<string, unknown>[] = [];
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (!trimmed.startsWith("{")) continue;
    try {
      objects.push(JSON.parse(trimmed));
    } catch {
      // A log line that merely starts with a brace.
    }
  }
  return objects;
}

/** llama-bench's fields of one test (and the file, which the report names), apart from its set-up. */
const LLAMA_BENCH_TEST_FIELDS = [
  "model_filename",
  "n_prompt",
  "n_gen",
  "n_depth",
  "test_time",
  "avg_ns",
  "stddev_ns",
  "avg_ts",
  "stddev_ts",
  "samples_ns",
  "samples_ts",
];

function without(line: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(line).filter(([key]) => !keys.includes(key)));
}

export function parseLlamaBench(stdout: string): LlamaBenchTest[] {
  return jsonLines(stdout)
    .filter((line) => typeof line.avg_ts === "number")
    .map((line) => ({
      nPrompt: Number(line.n_prompt),
      nGen: Number(line.n_gen),
      tokensPerSecond: Number(line.avg_ts),
      setup: without(line, LLAMA_BENCH_TEST_FIELDS),
    }));
}

/** One row of llama-batched-bench: `parallel` sequences, each a prompt then generated tokens. */
export interface BatchedBenchRow {
  parallel: number;
  /** Generated tokens of all sequences per second of decoding. */
  decodeTokensPerSecond: number;
  /** Prompt and generated tokens of all sequences per second of the whole run. */
  totalTokensPerSecond: number;
  /** The rest of the line: the tool's set-up (context, batch sizes, flash attention, threads). */
  setup: Record<string, unknown>;
}

export interface BatchedBenchOptions {
  promptTokens: number;
  generatedTokens: number;
  parallel: number[];
  threads: number;
}

export function batchedBenchArgs(file: string, options: BatchedBenchOptions): string[] {
  // Each sequence keeps its own prompt (no -pps), so the context must hold them all.
  const context = Math.max(...options.parallel) * (options.promptTokens + options.generatedTokens);
  return [
    LLAMA_BATCHED_BENCH,
    ...["-m", file, "-t", String(options.threads), "-c", String(context)],
    ...["-npp", String(options.promptTokens), "-ntg", String(options.generatedTokens)],
    ...["-npl", options.parallel.join(","), "--output-format", "jsonl"],
  ];
}

/** llama-batched-bench's fields of one row, apart from its set-up. */
const BATCHED_BENCH_ROW_FIELDS = ["pp", "tg", "pl", "n_kv", "t_pp", "speed_pp", "t_tg", "speed_tg", "t", "speed"];

export function parseBatchedBench(output: string): BatchedBenchRow[] {
  return jsonLines(output)
    .filter((line) => typeof line.speed_tg === "number")
    .map((line) => ({
      parallel: Number(line.pl),
      decodeTokensPerSecond: Number(line.speed_tg),
      totalTokensPerSecond: Number(line.speed),
      setup: without(line, BATCHED_BENCH_ROW_FIELDS),
    }));
}
