// Prometheus metrics under vLLM V1's names, so vLLM's dashboards (its Grafana one included) read
// this server. Gauges and the prefix-cache and preemption counters come from a fresh read of each
// engine's scheduler stats; token counters and latency histograms are measured here, where
// requests arrive and their tokens leave, with each request's queue time from the engine. Every
// series carries its model's model_name label, and each metric's series from all models sit under
// one HELP/TYPE header, as the exposition format wants. Counters end in _total, as Prometheus'
// client names them.
import type { CoreInfo } from "../engine/core-protocol.ts";
import type { SchedulerStats } from "../engine/scheduler-output.ts";

/** vLLM's bucket boundaries, in seconds. */
const TTFT_BUCKETS = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560,
];
const ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const E2E_BUCKETS = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];

/** vLLM's token-count buckets: 1, 2, 5, 10, 20, 50, ... up to `max`. */
export function oneTwoFiveBuckets(max: number): number[] {
  const buckets: number[] = [];
  for (let scale = 1; ; scale *= 10) {
    for (const mantissa of [1, 2, 5]) {
      if (mantissa * scale > max) return buckets;
      buckets.push(mantissa * scale);
    }
  }
}

/**
 * A bucket bound as vLLM's Python client (prometheus_client) writes it: 1.0, 0.25, 2560.0, 1e+06.
 * A bound is a label value, so series from vllm-ts and vLLM share buckets only if they spell them
 * alike (the format itself would also take 1 or 1000000).
 */
export function bucketBound(bound: number): string {
  const repr = Number.isInteger(bound) ? `${bound}.0` : String(bound);
  const dot = repr.indexOf(".");
  // Go, whose spelling the client copies, switches to an exponent from 10^6 on.
  if (bound <= 0 || dot <= 6) return repr;
  const mantissa = `${repr[0]}.${repr.slice(1, dot)}${repr.slice(dot + 1)}`.replace(/[.0]+$/, "");
  return `${mantissa}e+0${dot - 1}`;
}

/** One finished sequence, its times in performance.now() milliseconds. */
export interface FinishedSequence {
  finishReason: string;
  arrivedAt: number;
  /** When the engine first scheduled it (arrival + its queue time). */
  scheduledAt: number;
  /** Null if it generated nothing. */
  firstTokenAt: number | null;
  lastTokenAt: number;
  finishedAt: number;
  promptTokens: number;
  generationTokens: number;
}

/** One metric: its header and its sample lines. */
interface Family {
  name: string;
  type: "gauge" | "counter" | "histogram";
  help: string;
  samples: string[];
}

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

  family(labels: string): Family {
    const samples = this.buckets.map(
      (bound, i) => `${this.name}_bucket{${labels},le="${bucketBound(bound)}"} ${this.counts[i]}`,
    );
    samples.push(
      `${this.name}_bucket{${labels},le="+Inf"} ${this.count}`,
      `${this.name}_sum{${labels}} ${this.sum}`,
      `${this.name}_count{${labels}} ${this.count}`,
    );
    return { name: this.name, type: "histogram", help: this.help, samples };
  }
}

export class Metrics {
  private promptTokens = 0;
  private generationTokens = 0;
  private readonly finished = new Map<string, number>();
  private readonly timeToFirstToken = new Histogram(
    "vllm:time_to_first_token_seconds",
    "Histogram of time to first token in seconds.",
    TTFT_BUCKETS,
  );
  private readonly interTokenLatency = new Histogram(
    "vllm:inter_token_latency_seconds",
    "Histogram of inter-token latency in seconds.",
    ITL_BUCKETS,
  );
  private readonly e2eLatency = new Histogram(
    "vllm:e2e_request_latency_seconds",
    "Histogram of end to end request latency in seconds.",
    E2E_BUCKETS,
  );
  private readonly queueTime = new Histogram(
    "vllm:request_queue_time_seconds",
    "Histogram of time spent in WAITING phase for request.",
    E2E_BUCKETS,
  );
  private readonly prefillTime = new Histogram(
    "vllm:request_prefill_time_seconds",
    "Histogram of time spent in PREFILL phase for request.",
    E2E_BUCKETS,
  );
  private readonly decodeTime = new Histogram(
    "vllm:request_decode_time_seconds",
    "Histogram of time spent in DECODE phase for request.",
    E2E_BUCKETS,
  );
  private readonly inferenceTime = new Histogram(
    "vllm:request_inference_time_seconds",
    "Histogram of time spent in RUNNING phase for request.",
    E2E_BUCKETS,
  );
  private readonly timePerOutputToken = new Histogram(
    "vllm:request_time_per_output_token_seconds",
    "Histogram of time_per_output_token_seconds per request.",
    ITL_BUCKETS,
  );
  private readonly requestPromptTokens: Histogram;
  private readonly requestGenerationTokens: Histogram;
  private readonly iterationTokens: Histogram;

  /** The label pair of every series, `model_name="..."`. */
  private readonly labels: string;

  constructor(
    modelName: string,
    private readonly info: CoreInfo,
  ) {
    this.labels = `model_name="${modelName.replace(/["\\\n]/g, "_")}"`;
    const tokens = oneTwoFiveBuckets(info.config.maxModelLen);
    this.requestPromptTokens = new Histogram(
      "vllm:request_prompt_tokens",
      "Number of prefill tokens processed.",
      tokens,
    );
    this.requestGenerationTokens = new Histogram(
      "vllm:request_generation_tokens",
      "Number of generation tokens processed.",
      tokens,
    );
    this.iterationTokens = new Histogram(
      "vllm:iteration_tokens_total",
      "Histogram of number of tokens per engine_step.",
      oneTwoFiveBuckets(info.config.maxNumBatchedTokens),
    );
  }

  /** One engine step that computed numScheduledTokens tokens. */
  recordIteration(numScheduledTokens: number): void {
    if (numScheduledTokens > 0) this.iterationTokens.observe(numScheduledTokens);
  }

  /** Tokens counted so far, for the periodic stats line. */
  tokenTotals(): { promptTokens: number; generationTokens: number } {
    return { promptTokens: this.promptTokens, generationTokens: this.generationTokens };
  }

  recordPrompt(numTokens: number): void {
    this.promptTokens += numTokens;
  }

  /** One sequence's step: `sinceLast` is the time since its previous tokens (or its arrival). */
  recordTokens(numTokens: number, sinceLast: number, isFirst: boolean): void {
    this.generationTokens += numTokens;
    (isFirst ? this.timeToFirstToken : this.interTokenLatency).observe(sinceLast);
  }

  /** vLLM's phases: queued until first scheduled, prefill until the first token, decode until the last. */
  recordFinished(sequence: FinishedSequence): void {
    const seconds = (from: number, to: number) => Math.max(0, to - from) / 1000;
    const { finishReason, arrivedAt, scheduledAt, firstTokenAt, lastTokenAt, finishedAt } = sequence;
    this.finished.set(finishReason, (this.finished.get(finishReason) ?? 0) + 1);
    this.e2eLatency.observe(seconds(arrivedAt, finishedAt));
    this.queueTime.observe(seconds(arrivedAt, scheduledAt));
    this.requestPromptTokens.observe(sequence.promptTokens);
    this.requestGenerationTokens.observe(sequence.generationTokens);
    if (firstTokenAt === null) return;
    this.prefillTime.observe(seconds(scheduledAt, firstTokenAt));
    this.decodeTime.observe(seconds(firstTokenAt, lastTokenAt));
    this.inferenceTime.observe(seconds(scheduledAt, lastTokenAt));
    if (sequence.generationTokens > 1)
      this.timePerOutputToken.observe(seconds(firstTokenAt, lastTokenAt) / (sequence.generationTokens - 1));
  }

  families(stats: SchedulerStats): Family[] {
    const labels = this.labels;
    const metric = (name: string, type: "gauge" | "counter", help: string, value: number): Family => ({
      name,
      type,
      help,
      samples: [`${name}{${labels}} ${value}`],
    });
    return [
      metric("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.", stats.numRunning),
      metric("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", stats.numWaiting),
      metric("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.", stats.kvCacheUsage),
      metric(
        "vllm:prefix_cache_queries_total",
        "counter",
        "Prefix cache queries, in terms of number of queried tokens.",
        stats.prefixCacheQueries,
      ),
      metric(
        "vllm:prefix_cache_hits_total",
        "counter",
        "Prefix cache hits, in terms of number of cached tokens.",
        stats.prefixCacheHits,
      ),
      metric(
        "vllm:num_preemptions_total",
        "counter",
        "Cumulative number of preemptions from the engine.",
        stats.numPreemptions,
      ),
      metric("vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.", this.promptTokens),
      metric(
        "vllm:generation_tokens_total",
        "counter",
        "Number of generation tokens processed.",
        this.generationTokens,
      ),
      {
        name: "vllm:request_success_total",
        type: "counter",
        help: "Count of successfully processed requests.",
        samples: [...this.finished].map(
          ([reason, count]) => `vllm:request_success_total{${labels},finished_reason="${reason}"} ${count}`,
        ),
      },
      this.timeToFirstToken.family(labels),
      this.interTokenLatency.family(labels),
      this.e2eLatency.family(labels),
      this.queueTime.family(labels),
      this.prefillTime.family(labels),
      this.decodeTime.family(labels),
      this.inferenceTime.family(labels),
      this.timePerOutputToken.family(labels),
      this.requestPromptTokens.family(labels),
      this.requestGenerationTokens.family(labels),
      this.iterationTokens.family(labels),
      this.cacheConfigInfo(labels),
    ];
  }

  /** vLLM's cache_config_info: the KV cache's configuration as labels of a gauge set to 1. */
  private cacheConfigInfo(labels: string): Family {
    const { config, kvCacheSize } = this.info;
    const info = {
      block_size: kvCacheSize.blockSize,
      cache_dtype: "auto",
      enable_prefix_caching: config.enablePrefixCaching ? "True" : "False",
      gpu_memory_utilization: config.gpuMemoryUtilization,
      num_gpu_blocks: kvCacheSize.numBlocks,
    };
    const infoLabels = Object.entries(info)
      .map(([key, value]) => `${key}="${value}"`)
      .join(",");
    return {
      name: "vllm:cache_config_info",
      type: "gauge",
      help: "Information of the LLMEngine CacheConfig",
      samples: [`vllm:cache_config_info{${labels},${infoLabels}} 1`],
    };
  }
}

/** The Prometheus text of every model's metrics, each metric's series grouped under one header. */
export function renderMetrics(reports: readonly { metrics: Metrics; stats: SchedulerStats }[]): string {
  const merged = new Map<string, Family>();
  for (const { metrics, stats } of reports) {
    for (const family of metrics.families(stats)) {
      const known = merged.get(family.name);
      if (known) known.samples.push(...family.samples);
      else merged.set(family.name, family);
    }
  }
  const lines = [...merged.values()].flatMap((family) => [
    `# HELP ${family.name} ${family.help}`,
    `# TYPE ${family.name} ${family.type}`,
    ...family.samples,
  ]);
  return `${lines.join("\n")}\n`;
}
