// Prometheus metrics under vLLM's names, so vLLM's dashboards read this server. Gauges come from
// a fresh read of the scheduler's stats; token counters and latency histograms are measured here,
// where requests arrive and their tokens leave.
import type { SchedulerStats } from "../engine/scheduler-interface.ts";

/** vLLM's bucket boundaries, in seconds. */
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560];
const ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const E2E_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];

class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
  ) {
    this.counts = buckets.map(() => 0);
  }

  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (seconds <= this.buckets[i]!) this.counts[i]!++;
  }

  render(labels: string): string[] {
    const inner = labels.slice(1, -1);
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((bound, i) => lines.push(`${this.name}_bucket{${inner},le="${bound}"} ${this.counts[i]}`));
    lines.push(`${this.name}_bucket{${inner},le="+Inf"} ${this.count}`, `${this.name}_sum${labels} ${this.sum}`, `${this.name}_count${labels} ${this.count}`);
    return lines;
  }
}

export class Metrics {
  private promptTokens = 0;
  private generationTokens = 0;
  private readonly finished = new Map<string, number>();
  private readonly timeToFirstToken = new Histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", TTFT_BUCKETS);
  private readonly interTokenLatency = new Histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", ITL_BUCKETS);
  private readonly e2eLatency = new Histogram("vllm:e2e_request_latency_seconds", "Histogram of end to end request latency in seconds.", E2E_BUCKETS);

  constructor(private readonly modelName: string) {}

  recordPrompt(numTokens: number): void {
    this.promptTokens += numTokens;
  }

  /** One sequence's step: `sinceLast` is the time since its previous tokens (or its arrival). */
  recordTokens(numTokens: number, sinceLast: number, isFirst: boolean): void {
    this.generationTokens += numTokens;
    (isFirst ? this.timeToFirstToken : this.interTokenLatency).observe(sinceLast);
  }

  recordFinished(finishReason: string, e2eSeconds: number): void {
    this.finished.set(finishReason, (this.finished.get(finishReason) ?? 0) + 1);
    this.e2eLatency.observe(e2eSeconds);
  }

  render(stats: SchedulerStats): string {
    const labels = `{model_name="${this.modelName.replace(/["\\\n]/g, "_")}"}`;
    const metric = (name: string, type: "gauge" | "counter", help: string, value: number) => [
      `# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name}${labels} ${value}`,
    ];
    const finishedLines = [...this.finished].map(
      ([reason, count]) => `vllm:request_success_total{${labels.slice(1, -1)},finished_reason="${reason}"} ${count}`,
    );
    return [
      ...metric("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.", stats.numRunning),
      ...metric("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", stats.numWaiting),
      ...metric("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.", stats.kvCacheUsage),
      ...metric("vllm:prefix_cache_hit_rate", "gauge", "Prefix-cache hit rate: cached tokens / tokens of admitted requests.", stats.prefixCacheHitRate),
      ...metric("vllm:num_preemptions_total", "counter", "Cumulative number of preemptions from the engine.", stats.numPreemptions),
      ...metric("vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.", this.promptTokens),
      ...metric("vllm:generation_tokens_total", "counter", "Number of generation tokens processed.", this.generationTokens),
      "# HELP vllm:request_success_total Count of successfully processed requests.",
      "# TYPE vllm:request_success_total counter",
      ...finishedLines,
      ...this.timeToFirstToken.render(labels),
      ...this.interTokenLatency.render(labels),
      ...this.e2eLatency.render(labels),
    ].join("\n") + "\n";
  }
}
