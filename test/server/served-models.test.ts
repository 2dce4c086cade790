// How several engines share the device: each model's gpuMemoryUtilization is its share, and since
// an engine's KV budget counts the memory the engines before it already hold, the k-th engine is
// started with the running sum of the first k shares.
import { describe, expect, test } from "bun:test";
import { memoryCeilings } from "../../src/server/served-models.ts";

describe("memoryCeilings", () => {
  test("one model keeps its utilization as it is", () => {
    expect(memoryCeilings([0.9])).toEqual([0.9]);
  });

  test("equal shares become running sums, the last one the whole utilization", () => {
    expect(memoryCeilings([0.3, 0.3, 0.3]).map((c) => Number(c.toFixed(6)))).toEqual([0.3, 0.6, 0.9]);
  });

  test("shares that add up to the whole device pass despite floating point", () => {
    expect(memoryCeilings([0.1, 0.2, 0.7]).at(-1)).toBe(1);
  });

  test("shares past the whole device are an error", () => {
    expect(() => memoryCeilings([0.6, 0.5])).toThrow(/add up to 1\.100, more than the whole device/);
  });
});
