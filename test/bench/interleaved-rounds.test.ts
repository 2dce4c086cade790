// Measuring configurations round by round: the order rotates so that no configuration always runs
// first (or right after another), and each is represented by its fastest run.
import { describe, expect, test } from "bun:test";
import { fastestRun, interleavedRounds } from "../../src/bench/engine/interleaved-rounds.ts";

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

  test("a run slowed by a burst of other load is not the one kept", () => {
    const runs = [14.9, 10.4, 10.4, 12.1].map((seconds, round) => ({ round, seconds }));
    expect(fastestRun(runs, (run) => run.seconds)).toEqual({ round: 1, seconds: 10.4 });
  });

  test("refuses zero rounds and has no fastest of no runs", async () => {
    await expect(interleavedRounds(["a"], 0, async () => 0)).rejects.toThrow("rounds must be an integer >= 1, got 0");
    expect(() => fastestRun([], () => 0)).toThrow("the fastest of no runs");
  });
});
