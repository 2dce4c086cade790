// The static-batching baseline: batches form only when idle, reserve max-length KV up front and
// admit nobody until all members finish; it produces the same tokens as the continuous scheduler
// while wasting most of its reserved KV slots on short requests.

import { describe, expect, test } from "bun:test";
import { KVCacheManager } from "../../src/engine/kv-cache-manager.ts";
import { Scheduler } from "../../src/engine/scheduler.ts";
import type { SchedulerLimits } from "../../src/engine/scheduler-interface.ts";
import { StaticScheduler } from "../../src/engine/static-scheduler.ts";
import { FakeEngine, makeRequest, makeRng, randomTokens, referenceOutput } from "../helpers/fake-engine.ts";

interface Setup extends Partial<SchedulerLimits> {
  numBlocks?: number;
  blockSize?: number;
}

function setup(config: Setup = {}) {
  const { numBlocks = 64, blockSize = 4 } = config;
  const kvCacheManager = new KVCacheManager({ numBlocks, blockSize, enablePrefixCaching: false });
  const limits = {
    maxNumBatchedTokens: config.maxNumBatchedTokens ?? 64,
    maxNumSeqs: config.maxNumSeqs ?? 4,
    maxModelLen: config.maxModelLen ?? 32,
  };
  const scheduler = new StaticScheduler({ kvCacheManager, ...limits });
  const engine = new FakeEngine({ scheduler, kvCacheManager, ...limits });
  return { kvCacheManager, scheduler, engine, ...limits };
}

function stepsScheduling(engine: FakeEngine, requestId: string): number[] {
  return engine.steps.flatMap(({ output }, i) => (output.numScheduledTokens.has(requestId) ? [i] : []));
}

describe("StaticScheduler", () => {
  test("admits nobody into a running batch, and frees its reservation only when every member has finished", () => {
    const { kvCacheManager, engine } = setup({ maxNumSeqs: 3, maxModelLen: 32 });
    const random = makeRng(1);
    const maxTokens = [2, 6, 4, 3, 3];
    engine.add(...maxTokens.map((max, i) => makeRequest(`r${i}`, randomTokens(random, 5 + i), { maxTokens: max })));
    engine.step();
    engine.add(makeRequest("late", randomTokens(random, 4), { maxTokens: 2 }));
    engine.runUntilIdle();
    const lastOfFirstBatch = Math.max(...["r0", "r1", "r2"].map((id) => stepsScheduling(engine, id).at(-1)!));
    expect(lastOfFirstBatch).toBe(stepsScheduling(engine, "r1").at(-1)!);
    for (const id of ["r3", "r4", "late"]) {
      expect(stepsScheduling(engine, id)[0]).toBeGreaterThan(lastOfFirstBatch);
    }
    // "r0" finishes after 2 tokens: it stops computing, but its 8 blocks stay reserved.
    expect(stepsScheduling(engine, "r0")).toEqual([0, 1]);
    const usage = engine.steps.slice(0, lastOfFirstBatch).map(({ stats }) => stats.kvCacheUsage);
    expect(new Set(usage)).toEqual(new Set([(3 * 8) / 64]));
    expect(engine.steps[lastOfFirstBatch]!.stats.allocatedSlots).toBe(0);
    expect(kvCacheManager.numFreeBlocks).toBe(64);
  });

  test("reserves ceil(maxModelLen / blockSize) blocks per member, and takes fewer members when blocks run short", () => {
    const { engine } = setup({ numBlocks: 20, blockSize: 4, maxModelLen: 30, maxNumSeqs: 4 });
    const random = makeRng(2);
    engine.add(...[0, 1, 2].map((i) => makeRequest(`r${i}`, randomTokens(random, 6), { maxTokens: 3 })));
    const { output } = engine.step();
    expect(output.scheduledNewRequests.map(({ requestId }) => requestId)).toEqual(["r0", "r1"]);
    const [first, second] = output.scheduledNewRequests.map(({ blockIds }) => blockIds);
    expect([first!.length, second!.length]).toEqual([8, 8]);
    expect(new Set([...first!, ...second!]).size).toBe(16);
    expect(output.stats).toMatchObject({ numRunning: 2, numWaiting: 1, kvCacheUsage: 16 / 20 });
    engine.runUntilIdle();
    expect(stepsScheduling(engine, "r2")[0]).toBe(stepsScheduling(engine, "r0").at(-1)! + 1);
  });

  test("computes every member's prompt first, split over steps within the budget, then decodes all in lockstep", () => {
    const { engine, maxModelLen } = setup({ maxNumBatchedTokens: 16, maxNumSeqs: 3 });
    const prompts = [makeRng(3), makeRng(4), makeRng(5)].map((random) => randomTokens(random, 10));
    engine.add(...prompts.map((prompt, i) => makeRequest(`m${i}`, prompt, { maxTokens: 3 })));
    engine.runUntilIdle();
    expect(engine.steps.map(({ output }) => Object.fromEntries(output.numScheduledTokens))).toEqual([
      { m0: 10, m1: 6 },
      { m1: 4, m2: 10 },
      { m0: 1, m1: 1, m2: 1 },
      { m0: 1, m1: 1, m2: 1 },
    ]);
    prompts.forEach((prompt, i) => {
      expect(engine.tokens.get(`m${i}`)).toEqual(referenceOutput(prompt, { maxTokens: 3 }, maxModelLen));
    });
  });

  test("wastes most reserved slots on short requests where the continuous scheduler wastes few, with the same tokens", () => {
    const limits = { maxNumBatchedTokens: 256, maxNumSeqs: 8, maxModelLen: 256 };
    const numBlocks = 8 * 32;
    const blockSize = 8;
    const random = makeRng(6);
    const prompts = Array.from({ length: 16 }, () => randomTokens(random, 20));
    const runWith = (kind: "static" | "continuous") => {
      const kvCacheManager = new KVCacheManager({ numBlocks, blockSize, enablePrefixCaching: false });
      const scheduler =
        kind === "static"
          ? new StaticScheduler({ kvCacheManager, ...limits })
          : new Scheduler({ kvCacheManager, ...limits, enableChunkedPrefill: true });
      const engine = new FakeEngine({ scheduler, kvCacheManager, ...limits });
      engine.add(...prompts.map((prompt, i) => makeRequest(`r${i}`, prompt, { maxTokens: 10 })));
      engine.runUntilIdle();
      return engine;
    };
    const staticEngine = runWith("static");
    const continuousEngine = runWith("continuous");
    expect(staticEngine.aggregateWasteRatio()).toBeGreaterThan(0.5);
    expect(continuousEngine.aggregateWasteRatio()).toBeLessThan(0.2);
    expect(Math.max(...staticEngine.steps.map(({ stats }) => stats.wasteRatio))).toBeGreaterThan(0.8);
    expect(Object.fromEntries(staticEngine.tokens)).toEqual(Object.fromEntries(continuousEngine.tokens));
    prompts.forEach((prompt, i) => {
      expect(staticEngine.tokens.get(`r${i}`)).toEqual(referenceOutput(prompt, { maxTokens: 10 }, 256));
    });
  });

  test("abort drops a waiting request, and aborting the last running member frees the whole batch", () => {
    const { kvCacheManager, scheduler, engine } = setup({ maxNumSeqs: 2 });
    const random = makeRng(7);
    const requests = [0, 1, 2].map((i) => makeRequest(`r${i}`, randomTokens(random, 5), { maxTokens: 20 }));
    engine.add(...requests);
    engine.step();
    scheduler.abort(["r2", "r0"]);
    expect([scheduler.numRunning, scheduler.numWaiting]).toEqual([1, 0]);
    expect(kvCacheManager.numFreeBlocks).toBe(64 - 2 * 8);
    scheduler.abort(["r1"]);
    expect(kvCacheManager.numFreeBlocks).toBe(64);
    expect(requests.map(({ status }) => status)).toEqual(Array(3).fill("FINISHED_ABORTED"));
    expect(scheduler.hasUnfinishedRequests()).toBe(false);
    expect(engine.step().output.finishedRequestIds.sort()).toEqual(["r0", "r1", "r2"]);
  });

  test("rejects a prompt longer than maxModelLen at admission with a clear message", () => {
    const { scheduler, engine } = setup({ maxModelLen: 32 });
    engine.add(makeRequest("too-long", new Array(33).fill(1)));
    expect(scheduler.numWaiting).toBe(0);
    expect(engine.step().outputs).toEqual([
      expect.objectContaining({
        requestId: "too-long",
        finishReason: "rejected",
        error: expect.stringContaining("prompt has 33 tokens; max model length is 32"),
      }),
    ]);
  });

  test("a randomized workload keeps the reservation invariants and gives every request its solo tokens", () => {
    const { kvCacheManager, scheduler, engine, maxModelLen } = setup({
      numBlocks: 40,
      maxModelLen: 40,
      maxNumBatchedTokens: 24,
      maxNumSeqs: 6,
    });
    const random = makeRng(8);
    const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
    const expected = new Map<string, number[]>();
    const aborted = new Set<string>();
    for (let step = 0; step < 600; step++) {
      if (scheduler.numWaiting < 8 && random() < 0.3) {
        const prompt = randomTokens(random, int(1, 44));
        const init = { maxTokens: int(1, 30), eosTokenIds: [int(0, 999)] };
        expected.set(`r${step}`, referenceOutput(prompt, init, maxModelLen));
        engine.add(makeRequest(`r${step}`, prompt, init));
      }
      engine.step();
      if (random() < 0.02) {
        const candidates = [...expected.keys()].filter((id) => !engine.finished.has(id) && !aborted.has(id));
        const requestId = candidates[int(0, candidates.length - 1)];
        if (requestId !== undefined) {
          scheduler.abort([requestId]);
          aborted.add(requestId);
          scheduler.checkInvariants();
        }
      }
    }
    engine.runUntilIdle();
    expect(kvCacheManager.numFreeBlocks).toBe(40);
    let numCompared = 0;
    for (const [requestId, tokens] of expected) {
      if (aborted.has(requestId) || engine.finished.get(requestId)?.finishReason === "rejected") continue;
      expect(engine.tokens.get(requestId)).toEqual(tokens);
      numCompared++;
    }
    expect(numCompared).toBeGreaterThan(50);
  });
});
