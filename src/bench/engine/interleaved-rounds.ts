// Several configurations measured round by round, the order rotating from round to round, each
// figure then taken from a configuration's median run: a burst of other load on a shared machine
// falls on one run of one configuration, not on every run of it, as when each runs all its
// repetitions back to back.

/** Runs `measure` for every key in every round; returns each key's runs in round order. */
export async function interleavedRounds<K extends string, R>(
  keys: readonly K[],
  rounds: number,
  measure: (key: K, round: number) => Promise<R>,
): Promise<Map<K, R[]>> {
  if (!Number.isSafeInteger(rounds) || rounds < 1)
    throw new RangeError(`rounds must be an integer >= 1, got ${rounds}`);
  const runs = new Map<K, R[]>(keys.map((key) => [key, []]));
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < keys.length; i++) {
      const key = keys[(i + round) % keys.length]!;
      runs.get(key)!.push(await measure(key, round));
    }
  }
  return runs;
}

/** The middle value (the lower of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("the median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** The run whose `value` is the median of the runs'. */
export function medianRun<R>(runs: readonly R[], value: (run: R) => number): R {
  const middle = median(runs.map(value));
  return runs.find((run) => value(run) === middle)!;
}
