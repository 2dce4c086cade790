// Measuring configurations round by round: the order rotates so that no configuration always runs
// first (or right after another), and each figure comes from the median run.
import { describe, expect, test } from "bun:test";
import { interleavedRounds, median, medianRun } from "../../src/bench/engine/interleaved-rounds.ts";

describe("interleaved rounds", () => {
  test("every configuration runs once a round, the order rotating from round to round", async () => {
    const order: string[] = [];
    const runs = await interleavedRounds(["a", "b", "c"], 3, async (key, round) => {
      order.push(`${key}${round}`);
      return `${key}${round}`;
    });
    expect(order).toEqual(["a0", "b0", "c0", "b1", "c1", "a1", "c2", "a2", "b2"]);
    expect([...runs]).toEqual([
      ["a", ["a0", "a1", "a2"]],
      ["b", ["b0", "b1", "b2"]],
      ["c", ["c0", "c1", "c2"]],
    ]);
  });

  test("a burst of load on one run moves neither the median run nor the median ratio", () => {
    const elapsed = [10.2, 14.9, 10.4];
    const runs = elapsed.map((seconds, round) => ({ round, seconds }));
    expect(medianRun(runs, (run) => run.seconds)).toEqual({ round: 2, seconds: 10.4 });
    expect(median([1.1, 0.7, 1.2])).toBe(1.1);
    expect(median([3, 1, 4, 2])).toBe(2);
  });

  test("refuses zero rounds and takes no median of nothing", async () => {
    await expect(interleavedRounds(["a"], 0, async () => 0)).rejects.toThrow("rounds must be an integer >= 1, got 0");
    expect(() => median([])).toThrow("the median of no values");
  });
});
