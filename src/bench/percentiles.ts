// Summary statistics of latency samples, named as vLLM's bench serve names them (mean, median,
// std, p90, p99 of a metric in ms).

/** The q-th percentile (0..100) with linear interpolation between ranks, as numpy computes it. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = (q / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.min(low + 1, sorted.length - 1);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (rank - low);
}

/** `{ mean_<name>_ms, median_<name>_ms, std_<name>_ms, p90_<name>_ms, p99_<name>_ms }`; zeros for no samples. */
export function latencySummary(name: string, samples: readonly number[]): Record<string, number> {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = sorted.length === 0 ? 0 : sorted.reduce((sum, x) => sum + x, 0) / sorted.length;
  const variance = sorted.length === 0 ? 0 : sorted.reduce((sum, x) => sum + (x - mean) ** 2, 0) / sorted.length;
  return {
    [`mean_${name}_ms`]: mean,
    [`median_${name}_ms`]: percentile(sorted, 50),
    [`std_${name}_ms`]: Math.sqrt(variance),
    [`p90_${name}_ms`]: percentile(sorted, 90),
    [`p99_${name}_ms`]: percentile(sorted, 99),
  };
}
