// vllm-ts's side of the benchmark: bench/forward.ts for the forward pass alone, the compiled
// `vllm-ts bench latency` and `bench throughput` for whole requests through the engine, each on the
// GGUF file itself, and the figures read from the JSON each writes.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  DECODE_CONTEXT,
  DECODE_GENERATED_TOKENS,
  decodeBatchSizes,
  decodeFigure,
  END_TO_END_FIGURE,
  END_TO_END_TOKENS,
  type PeerWorkload,
  prefillFigure,
  THROUGHPUT_FIGURE,
  TOOL_REPETITIONS,
} from "./workload.ts";

const REPOSITORY = resolve(import.meta.dir, "../..");
const EXECUTABLE = join(REPOSITORY, "dist/vllm-ts");
const FORWARD_BENCH = join(REPOSITORY, "bench/forward.ts");

export function missingExecutableReason(): string | null {
  return existsSync(EXECUTABLE) ? null : `${EXECUTABLE} is not built (run \`make\`)`;
}

/** Flags every engine command shares: the same device, threads and storage dtype for all formats. */
function engineFlags(workload: PeerWorkload): string[] {
  // A quantized file's norms and embedding are stored in the model's dtype: bf16 as for the BF16 file.
  return ["--device", "cpu", "--threads", String(workload.threads), "--dtype", "bfloat16"];
}

/** Prefill and decode of the forward pass alone; only the prefill when no decode figure is asked. */
export function forwardArgs(file: string, workload: PeerWorkload, outputJson: string): string[] {
  const batchSizes = decodeBatchSizes(workload);
  return [
    process.execPath,
    FORWARD_BENCH,
    ...["--model", file, "--threads", String(workload.threads), "--prompt-len", String(workload.prefillTokens)],
    ...["--batch-sizes", (batchSizes.length > 0 ? batchSizes : [1]).join(",")],
    ...["--decode-context", String(DECODE_CONTEXT)],
    ...["--decode-steps", String(batchSizes.length > 0 ? DECODE_GENERATED_TOKENS : 1)],
    ...["--output-json", outputJson],
  ];
}

interface ForwardReport {
  prefill: { promptLength: number; tokensPerSecond: number };
  decode: { batchSize: number; tokensPerSecond: number }[];
}

export async function forwardFigures(outputJson: string, workload: PeerWorkload): Promise<Record<string, number>> {
  const report: ForwardReport = await Bun.file(outputJson).json();
  const figures: Record<string, number> = {};
  for (const batchSize of decodeBatchSizes(workload)) {
    const decode = report.decode.find((d) => d.batchSize === batchSize);
    if (!decode) throw new Error(`${outputJson} has no decode figure at batch ${batchSize}`);
    figures[decodeFigure(batchSize)] = decode.tokensPerSecond;
  }
  if (workload.groups.has("prefill"))
    figures[prefillFigure(report.prefill.promptLength)] = report.prefill.tokensPerSecond;
  return figures;
}

/** One request of a one-token prompt: as many one-token forward passes as tokens out, as tg32. */
export function latencyArgs(file: string, workload: PeerWorkload, outputJson: string): string[] {
  return [
    EXECUTABLE,
    ...["bench", "latency", file, ...engineFlags(workload)],
    ...["--batch-size", "1", "--input-len", "1", "--output-len", String(END_TO_END_TOKENS)],
    ...["--num-iters", String(TOOL_REPETITIONS), "--num-iters-warmup", "1", "--output-json", outputJson],
  ];
}

export async function latencyFigures(outputJson: string): Promise<Record<string, number>> {
  const report = await Bun.file(outputJson).json();
  return { [END_TO_END_FIGURE]: report.results.outputTokensPerSecond };
}

export function throughputArgs(file: string, workload: PeerWorkload, outputJson: string): string[] {
  return [
    EXECUTABLE,
    ...["bench", "throughput", file, ...engineFlags(workload)],
    ...["--num-prompts", String(workload.requests), "--max-num-seqs", String(workload.requests)],
    // Offline throughput wants large prefill chunks; the CPU's default of 256 guards serving latency.
    ...["--max-num-batched-tokens", "2048"],
    ...["--input-len", String(workload.requestInputTokens), "--output-len", String(workload.requestOutputTokens)],
    ...["--output-json", outputJson],
  ];
}

export async function throughputFigures(outputJson: string): Promise<Record<string, number>> {
  const report = await Bun.file(outputJson).json();
  return { [THROUGHPUT_FIGURE]: report.results.totalTokensPerSecond };
}
