// bestSeconds (src/bench/kernels/timing.ts): on CUDA each sample replays a graph of whole
// rotations of the inputs, and every graph it captured is destroyed; elsewhere the calls run one
// by one, their index going on from sample to sample. A stand-in backend records what is asked.
import { describe, expect, test } from "bun:test";
import type { Backend } from "../../src/backend/backend.ts";
import { bestSeconds } from "../../src/bench/kernels/timing.ts";

interface Recorded {
  /** Call indices run outside a capture, in order. */
  direct: number[];
  /** The call indices of each captured graph. */
  captures: number[][];
  launches: number;
  destroyed: number;
}

function standIn(name: "cuda" | "cpu") {
  const recorded: Recorded = { direct: [], captures: [], launches: 0, destroyed: 0 };
  let capturing: number[] | null = null;
  const backend = {
    name,
    synchronize() {},
    captureGraph(record: () => void) {
      capturing = [];
      record();
      recorded.captures.push(capturing);
      capturing = null;
      let destroyed = false;
      return {
        launch: () => recorded.launches++,
        destroy: () => {
          if (!destroyed) recorded.destroyed++;
          destroyed = true;
        },
      };
    },
  } as unknown as Backend;
  const run = (call: number) => {
    (capturing ?? recorded.direct).push(call);
  };
  return { backend, recorded, run };
}

describe("bestSeconds", () => {
  test("on CUDA, samples replay a graph of whole rotations of the inputs, captured after two warm-up calls", () => {
    const { backend, recorded, run } = standIn("cuda");
    const seconds = bestSeconds(backend, { minSeconds: 0, minRepeats: 3, sampleSeconds: 0.002 }, run, 7);
    expect(seconds).toBeGreaterThan(0);
    expect(recorded.direct).toEqual([0, 1]);
    expect(recorded.captures.length).toBeGreaterThanOrEqual(1);
    expect(recorded.captures.length).toBeLessThanOrEqual(2);
    for (const calls of recorded.captures) {
      expect(calls.length % 7).toBe(0);
      expect(calls).toEqual(Array.from({ length: calls.length }, (_, i) => i));
    }
    // The first replay estimates the time per call, then at least minRepeats samples.
    expect(recorded.launches).toBeGreaterThanOrEqual(1 + 3);
    expect(recorded.destroyed).toBe(recorded.captures.length);
  });

  test("on the CPU, calls run one by one and their index goes on across samples", () => {
    const { backend, recorded, run } = standIn("cpu");
    bestSeconds(backend, { minSeconds: 0, minRepeats: 2, sampleSeconds: 0 }, run, 3);
    expect(recorded.captures).toEqual([]);
    // A sample of 0 s still holds one whole rotation: warm-up, timed single call, then 2 samples of 3.
    expect(recorded.direct).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
});
