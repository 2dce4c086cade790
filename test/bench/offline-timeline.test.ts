// The timeline `bench compare --plot` draws, recorded by the offline runner on a small random model:
// the KV memory each step held while it ran, and for each request when its last token was
// generated and when it was returned (a static batch's idle wait lies between the two).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Backend } from "../../src/backend/backend.ts";
import { emptyTimeline, type RunTimeline, runRequests } from "../../src/bench/engine/offline.ts";
import type { BenchRequest } from "../../src/bench/workload.ts";
import { EngineCore } from "../../src/engine/engine-core.ts";
import type { EngineConfig } from "../../src/engine/options.ts";
import { type EngineModel, loadModelWeights, resolveModel } from "../../src/model/load-model.ts";
import { writeRandomModel } from "../helpers/random-model.ts";

const MAX_MODEL_LEN = 64;
const BLOCK_SIZE = 16;

let backend: Backend;
let model: EngineModel;

beforeAll(async () => {
  backend = await Backend.open({ device: "cpu" });
  const written = await writeRandomModel({
    architecture: "LlamaForCausalLM",
    dtype: "float32",
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    maxPositionEmbeddings: 128,
  });
  model = loadModelWeights(backend, await resolveModel(written.dir));
});
afterAll(() => {
  model.weights.free();
  backend.close();
});

/** Six requests, two batches of three, each with one long and two short outputs. */
const requests: BenchRequest[] = [5, 9, 3, 7, 4, 8].map((length, i) => ({
  promptTokenIds: Array.from({ length }, (_, j) => 1 + ((i * 7 + j) % 50)),
  outputLen: i % 3 === 1 ? 12 : 3,
}));

async function timelineOf(scheduling: EngineConfig["scheduling"]): Promise<RunTimeline> {
  const core = EngineCore.create(backend, model, {
    scheduling,
    maxNumSeqs: 3,
    maxModelLen: MAX_MODEL_LEN,
    blockSize: BLOCK_SIZE,
    kvCacheMemory: 64 * 2 ** 20,
  });
  try {
    const timeline = emptyTimeline();
    await runRequests(core, requests, scheduling, { progress: false, timeline });
    return timeline;
  } finally {
    core.close();
  }
}

describe("the offline runner's timeline", () => {
  test("a static batch's reservation shows in every step it ran, its prefill included", async () => {
    const timeline = await timelineOf("static");
    const reservation = 3 * MAX_MODEL_LEN;
    // The post-step figure of a batch's last step is 0 (it freed everything), yet that step ran
    // with the whole reservation, as did the next batch's prefill.
    expect(timeline.kv.map(({ allocatedSlots }) => allocatedSlots)).toEqual(timeline.kv.map(() => reservation));
    for (const sample of timeline.kv) expect(sample.started).toBeLessThanOrEqual(sample.seconds);
  });

  test("a static batch's short requests are generated early and returned with the long one", async () => {
    const { requests: times } = await timelineOf("static");
    for (const batch of [times.slice(0, 3), times.slice(3)]) {
      const [short, long, alsoShort] = batch as [(typeof times)[0], (typeof times)[0], (typeof times)[0]];
      for (const request of batch) {
        expect(request.finished).toBe(long.finished);
        expect(request.firstToken).toBe(long.finished);
      }
      expect(short.generated!).toBeLessThan(long.generated!);
      expect(alsoShort.generated!).toBeLessThan(long.generated!);
      expect(long.generated).toBe(long.finished);
    }
  });

  test("continuous batching and static-drop return each request when its last token is generated", async () => {
    for (const scheduling of ["continuous", "static-drop"] as const) {
      const { requests: times } = await timelineOf(scheduling);
      for (const request of times) expect(request.generated).toBe(request.finished);
      expect(new Set(times.map((request) => request.finished)).size).toBeGreaterThan(2);
    }
  });
});
