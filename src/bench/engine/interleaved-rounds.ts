// Several configurations measured round by round, the order rotating from round to round, each
// then represented by its fastest run. Another job on a shared machine only ever slows a run
// down, and in bursts: interleaved, a burst falls on a run of each configuration in turn rather
// than on all the runs of one, and the fastest run of each is the one it disturbed least.

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

/** The run of least `seconds` (the first of equals). */
export function fastestRun<R>(runs: readonly R[], seconds: (run: R) => number): R {
  if (runs.length === 0) throw new RangeError("the fastest of no runs");
  return runs.reduce((best, run) => (seconds(run) < seconds(best) ? run : best));
}
