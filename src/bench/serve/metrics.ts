// The figures of `bench serve` over the requests' outcomes, under vLLM's bench serve names:
// counts, rates (goodput: the requests that met every service-level objective), and mean,
// median, std, p90 and p99 of TTFT, TPOT, ITL and end-to-end latency in ms; and the summary
// printed as vLLM prints it.
import { latencySummary } from "../percentiles.ts";
import type { ServeSamples } from "../plot/serve.ts";
import type { RequestOutcome } from "./client.ts";

export const LATENCIES = ["ttft", "tpot", "itl", "e2el"] as const;

/** The most ms a good request may take: to its first token, per output token after it, end to end. */
export type Objectives = Partial<Record<"ttft" | "tpot" | "e2el", number>>;

/** Time per output token after the first: (e2el - ttft) / (output tokens - 1); none for one token. */
function tpotOf(outcome: RequestOutcome): number | null {
  return outcome.outputLen > 1 ? (outcome.e2elMs - outcome.ttftMs) / (outcome.outputLen - 1) : null;
}

function isGood(outcome: RequestOutcome, objectives: Objectives): boolean {
  const tpot = tpotOf(outcome) ?? 0;
  return (
    (objectives.ttft === undefined || outcome.ttftMs <= objectives.ttft) &&
    (objectives.tpot === undefined || tpot <= objectives.tpot) &&
    (objectives.e2el === undefined || outcome.e2elMs <= objectives.e2el)
  );
}

/** The run's figures by vLLM's names (goodput only with objectives), and the latency samples they summarize. */
export function serveMetrics(
  outcomes: readonly RequestOutcome[],
  durationS: number,
  objectives: Objectives | null,
): { result: Record<string, number>; samples: ServeSamples } {
  const succeeded = outcomes.filter((o) => o.success);
  const totalInput = succeeded.reduce((sum, o) => sum + o.promptLen, 0);
  const totalOutput = succeeded.reduce((sum, o) => sum + o.outputLen, 0);
  const samples = {
    ttft: succeeded.map((o) => o.ttftMs),
    tpot: succeeded.map(tpotOf).filter((t): t is number => t !== null),
    itl: succeeded.flatMap((o) => o.itlMs),
    e2el: succeeded.map((o) => o.e2elMs),
  };
  const result: Record<string, number> = {
    duration: durationS,
    completed: succeeded.length,
    failed: outcomes.length - succeeded.length,
    total_input_tokens: totalInput,
    total_output_tokens: totalOutput,
    request_throughput: succeeded.length / durationS,
    ...(objectives ? { request_goodput: succeeded.filter((o) => isGood(o, objectives)).length / durationS } : {}),
    output_throughput: totalOutput / durationS,
    total_token_throughput: (totalInput + totalOutput) / durationS,
    ...Object.assign({}, ...LATENCIES.map((name) => latencySummary(name, samples[name]))),
  };
  return { result, samples };
}

export function printSummary(result: Record<string, number>, durationS: number, hasGoodput: boolean): void {
  const line = (label: string, value: number | string) =>
    console.log(`${label.padEnd(40)}${typeof value === "number" ? value.toFixed(2) : value}`);
  console.log("============ Serving Benchmark Result ============");
  line("Successful requests:", String(result.completed));
  line("Failed requests:", String(result.failed));
  line("Benchmark duration (s):", durationS);
  line("Total input tokens:", String(result.total_input_tokens));
  line("Total generated tokens:", String(result.total_output_tokens));
  line("Request throughput (req/s):", result.request_throughput!);
  if (hasGoodput) line("Request goodput (req/s):", result.request_goodput!);
  line("Output token throughput (tok/s):", result.output_throughput!);
  line("Total token throughput (tok/s):", result.total_token_throughput!);
  const titles = {
    ttft: "Time to First Token",
    tpot: "Time per Output Token (excl. 1st token)",
    itl: "Inter-token Latency",
    e2el: "End-to-end Latency",
  };
  for (const name of LATENCIES) {
    console.log(
      `${"-".repeat((50 - titles[name].length - 2) >> 1 || 1)} ${titles[name]} ${"-".repeat((50 - titles[name].length - 1) >> 1 || 1)}`,
    );
    line(`Mean ${name.toUpperCase()} (ms):`, result[`mean_${name}_ms`]!);
    line(`Median ${name.toUpperCase()} (ms):`, result[`median_${name}_ms`]!);
    line(`P90 ${name.toUpperCase()} (ms):`, result[`p90_${name}_ms`]!);
    line(`P99 ${name.toUpperCase()} (ms):`, result[`p99_${name}_ms`]!);
  }
  console.log("=".repeat(50));
}
