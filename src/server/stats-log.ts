// vLLM's periodic stats line: every interval (10 s, or VLLM_LOG_STATS_INTERVAL seconds), one line
// per model that was busy since the last one: requests running and waiting, prompt and generation
// throughput, KV-cache use and prefix-cache hit rate. Off with --disable-log-stats.
import { logger, withFields } from "../logger.ts";
import { UsageError } from "../usage-error.ts";
import type { ServedModel } from "./context.ts";

const DEFAULT_INTERVAL_SECONDS = 10;

export function statsIntervalSeconds(): number {
  const text = process.env.VLLM_LOG_STATS_INTERVAL;
  if (text === undefined) return DEFAULT_INTERVAL_SECONDS;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0)
    throw new UsageError(`VLLM_LOG_STATS_INTERVAL must be a positive number of seconds, got ${JSON.stringify(text)}`);
  return value;
}

const percent = (fraction: number) => `${(100 * fraction).toFixed(1)}%`;

/** Starts the stats lines; the timer never keeps the process alive. */
export function logStatsPeriodically(models: readonly ServedModel[], seconds: number): void {
  let last = models.map((model) => model.metrics.tokenTotals());
  let lastAt = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const elapsed = (now - lastAt) / 1000;
    const totals = models.map((model) => model.metrics.tokenTotals());
    models.forEach((model, i) => {
      const promptRate = (totals[i]!.promptTokens - last[i]!.promptTokens) / elapsed;
      const generationRate = (totals[i]!.generationTokens - last[i]!.generationTokens) / elapsed;
      const stats = model.engine.latestStats;
      const queued = stats ? stats.numRunning + stats.numWaiting : 0;
      if (queued === 0 && promptRate === 0 && generationRate === 0) return;
      const running = stats?.numRunning ?? 0;
      const waiting = stats?.numWaiting ?? 0;
      const kvCacheUsage = stats?.kvCacheUsage ?? 0;
      const prefixCacheHitRate = stats?.prefixCacheHitRate ?? 0;
      logger.info(
        withFields(
          `${model.servedModelName}: ${running} running, ${waiting} waiting; ` +
            `prompt ${promptRate.toFixed(1)} tok/s, generation ${generationRate.toFixed(1)} tok/s; ` +
            `KV cache ${percent(kvCacheUsage)} used; prefix cache hit rate ${percent(prefixCacheHitRate)}`,
          {
            model: model.servedModelName,
            running,
            waiting,
            prompt_tokens_per_second: promptRate,
            generation_tokens_per_second: generationRate,
            kv_cache_usage: kvCacheUsage,
            prefix_cache_hit_rate: prefixCacheHitRate,
          },
        ),
      );
    });
    last = totals;
    lastAt = now;
  }, seconds * 1000);
  timer.unref();
}
