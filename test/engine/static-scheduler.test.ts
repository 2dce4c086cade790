// The static-batching baselines: batches form only when idle, reserve max-length KV up front and
// admit nobody until they end. `static` runs a batch as Hugging Face generate() does (padding
// computed, finished rows computed until the longest ends, everything returned at the end);
// `static-drop` stops and returns each row as it finishes. Both produce the continuous scheduler's
// tokens while wasting most of their reserved KV slots on short requests.

import { describe, expect, test } from "bun:test";
import { KVCacheManager } from "../../src/engine/kv-cache-manager.ts";
import { Scheduler } from "../../src/engine/scheduler.ts";
import type { SchedulerLimits } from "../../src/engine/scheduler-interface.ts";
import { StaticScheduler } from "../../src/engine/static-scheduler.ts";
import { FakeEngine, makeRequest, makeRng, randomTokens, referenceOutput } from "../helpers/fake-engine.ts";

type Variant = "static" | "static-drop";

interface Setup extends Partial<SchedulerLimits> {
  numBlocks?: number;
  blockSize?: number;
}

function setup(variant: Variant, config: Setup = {}) {
  const { numBlocks = 64, blockSize = 4 } = config;
  const kvCacheManager = new KVCacheManager({ numBlocks, blockSize, enablePrefixCaching: false });
  const limits = {
    maxNumBatchedTokens: config.maxNumBatchedTokens ?? 64,
    maxNumSeqs: config.maxNumSeqs ?? 4,
    maxModelLen: config.maxModelLen ?? 32,
  };
  const scheduler = new StaticScheduler({ kvCacheManager, ...limits, dropFinishedRows: variant === "static-drop" });
  const engine = new FakeEngine({ scheduler, kvCacheManager, ...limits });
  return { kvCacheManager, scheduler, engine, ...limits };
}

function stepsScheduling(engine: FakeEngine, requestId: string): number[] {
  return engine.steps.flatMap(({ output }, i) => (output.numScheduledTokens.has(requestId) ? [i] : []));
}

/** Steps whose outputs carry tokens or a finish, with the ids they report. */
function reportingSteps(engine: FakeEngine): [number, string[]][] {
  return engine.steps.flatMap(({ outputs }, i) =>
    outputs.length > 0 ? [[i, outputs.map(({ requestId }) => requestId).sort()] as [number, string[]]] : [],
  );
}

describe("static (as Hugging Face generate())", () => {
  test("pads every prompt to the batch's longest, computing the padding within the step budget before anyone decodes", () => {
    const { engine } = setup("static", { maxNumBatchedTokens: 16, maxNumSeqs: 3 });
    const random = makeRng(11);
    const prompts = [3, 10, 6].map((length) => randomTokens(random, length));
    engine.add(...prompts.map((prompt, i) => makeRequest(`p${i}`, prompt, { maxTokens: 2 })));
    engine.runUntilIdle();
    expect(Object.fromEntries(engine.runner.paddingTokens)).toEqual({ p0: 7, p2: 4 });
    const prefill = engine.steps.map(({ output }) => ({
      tokens: Object.fromEntries(output.numScheduledTokens),
      padding: Object.fromEntries(output.paddingRows.map((row) => [row.requestId, row.numTokens])),
    }));
    // 3 x 10 tokens in steps of 16: p0's prompt and padding, p1's prompt, p2's prompt and padding.
    expect(prefill.slice(0, 2)).toEqual([
      { tokens: { p0: 3, p1: 6 }, padding: { p0: 7 } },
      { tokens: { p1: 4, p2: 6 }, padding: { p2: 4 } },
    ]);
    expect(prefill.slice(2).every(({ padding }) => Object.keys(padding).length === 0)).toBe(true);
    prompts.forEach((prompt, i) => {
      expect(engine.tokens.get(`p${i}`)).toEqual(referenceOutput(prompt, { maxTokens: 2 }, 32));
    });
  });

  test("computes a finished row on, its samples discarded, until the batch's longest row ends", () => {
    const { engine } = setup("static", { maxNumSeqs: 3 });
    const random = makeRng(12);
    const maxTokens = [2, 6, 4];
    const prompts = maxTokens.map(() => randomTokens(random, 5));
    engine.add(...prompts.map((prompt, i) => makeRequest(`r${i}`, prompt, { maxTokens: maxTokens[i] })));
    engine.runUntilIdle();
    // One prefill step, then 5 decodes for r1's 6 tokens: every row in every step.
    for (const id of ["r0", "r1", "r2"]) expect(stepsScheduling(engine, id)).toEqual([0, 1, 2, 3, 4, 5]);
    prompts.forEach((prompt, i) => {
      expect(engine.tokens.get(`r${i}`)).toEqual(referenceOutput(prompt, { maxTokens: maxTokens[i] }, 32));
    });
  });

  test("returns nothing until the batch ends, then every member at once with all its tokens", () => {
    const { engine } = setup("static", { maxNumSeqs: 2 });
    const random = makeRng(13);
    engine.add(
      makeRequest("short", randomTokens(random, 4), { maxTokens: 1 }),
      makeRequest("long", randomTokens(random, 9), { maxTokens: 5 }),
      makeRequest("next", randomTokens(random, 4), { maxTokens: 2 }),
    );
    engine.runUntilIdle();
    // The first batch ends with long's fifth token (step 4), the second after next's two (step 6).
    expect(reportingSteps(engine)).toEqual([
      [4, ["long", "short"]],
      [6, ["next"]],
    ]);
    const [short, long] = engine.steps[4]!.outputs.sort((a, b) => a.requestId.localeCompare(b.requestId)).reverse();
    expect(short).toMatchObject({ newTokenIds: engine.tokens.get("short"), finished: true, finishReason: "length" });
    expect(long).toMatchObject({ finished: true, finishReason: "length" });
    expect(long!.newTokenIds).toHaveLength(5);
  });

  test("counts padding and finished rows' positions as waste: only requests' own tokens are stored", () => {
    const { engine } = setup("static", { maxNumSeqs: 2, maxModelLen: 32, blockSize: 4 });
    const random = makeRng(14);
    engine.add(
      makeRequest("a", randomTokens(random, 4), { maxTokens: 1 }),
      makeRequest("b", randomTokens(random, 12), { maxTokens: 4 }),
    );
    const reservation = 2 * 32;
    // The prefill computes 4 + 8 padding + 12 tokens; 16 of them are the requests'.
    expect(engine.step().stats).toMatchObject({ tokensStored: 16, allocatedSlots: reservation });
    expect(engine.steps[0]!.stats.wasteRatio).toBeCloseTo(1 - 16 / reservation, 9);
    // a finished at once; it computes its last token and two samples it throws away, none stored.
    for (let i = 0; i < 2; i++) engine.step();
    expect(engine.steps[2]!.stats.tokensStored).toBe(4 + 12 + 2);
  });

  test("stops a finished row at max-model-len, never past its reservation, while the batch runs on", () => {
    const { engine, maxModelLen } = setup("static", { maxNumSeqs: 2, maxModelLen: 32, maxNumBatchedTokens: 64 });
    const random = makeRng(15);
    const early = randomTokens(random, 20);
    const late = randomTokens(random, 4);
    engine.add(makeRequest("early", early, { maxTokens: 2 }), makeRequest("late", late, { maxTokens: 28 }));
    engine.runUntilIdle();
    const positions = engine.steps.flatMap(({ output }) =>
      output.scheduledCachedRequests.filter(({ requestId }) => requestId === "early").map((r) => r.numComputedTokens),
    );
    // early finishes with 22 tokens; it computes positions 20 (its first output), then 21 to 31.
    expect(positions).toEqual(Array.from({ length: 12 }, (_, i) => 20 + i));
    expect(stepsScheduling(engine, "late").length).toBe(28);
    expect(engine.tokens.get("early")).toEqual(referenceOutput(early, { maxTokens: 2 }, maxModelLen));
    expect(engine.tokens.get("late")).toEqual(referenceOutput(late, { maxTokens: 28 }, maxModelLen));
  });

  test("an aborted member stops and is never returned; the last live one's abort returns the batch", () => {
    const { kvCacheManager, scheduler, engine } = setup("static", { maxNumSeqs: 3 });
    const random = makeRng(16);
    engine.add(
      makeRequest("done", randomTokens(random, 5), { maxTokens: 1 }),
      makeRequest("gone", randomTokens(random, 5), { maxTokens: 9 }),
      makeRequest("last", randomTokens(random, 5), { maxTokens: 9 }),
    );
    engine.step();
    engine.step();
    scheduler.abort(["gone"]);
    expect(scheduler.numRunning).toBe(2);
    expect(stepsScheduling(engine, "gone")).toEqual([0, 1]);
    engine.step();
    expect(engine.steps[2]!.output.numScheduledTokens.has("gone")).toBe(false);
    scheduler.abort(["last"]);
    expect(kvCacheManager.numFreeBlocks).toBe(64);
    const { outputs, output } = engine.step();
    expect(outputs.map(({ requestId }) => requestId)).toEqual(["done"]);
    expect(output.finishedRequestIds.sort()).toEqual(["done", "last"]);
    expect(scheduler.hasUnfinishedRequests()).toBe(false);
  });

  test("refuses a grammar-constrained request with a message that names what to use instead", () => {
    const { scheduler, engine } = setup("static");
    engine.add(makeRequest("json", [1, 2, 3], { structuredOutputs: { jsonObject: true } }));
    expect(scheduler.numWaiting).toBe(0);
    expect(engine.step().outputs).toEqual([
      expect.objectContaining({
        requestId: "json",
        finishReason: "rejected",
        error: expect.stringContaining("use --scheduling continuous or static-drop"),
      }),
    ]);
  });
});

describe("static-drop", () => {
  test("stops computing a finished row and returns it at once, with no padding", () => {
    const { engine } = setup("static-drop", { maxNumSeqs: 3 });
    const random = makeRng(17);
    engine.add(
      makeRequest("r0", randomTokens(random, 3), { maxTokens: 2 }),
      makeRequest("r1", randomTokens(random, 9), { maxTokens: 4 }),
    );
    engine.runUntilIdle();
    expect(engine.runner.paddingTokens.size).toBe(0);
    expect(stepsScheduling(engine, "r0")).toEqual([0, 1]);
    expect(stepsScheduling(engine, "r1")).toEqual([0, 1, 2, 3]);
    expect(reportingSteps(engine)).toEqual([
      [0, ["r0", "r1"]],
      [1, ["r0", "r1"]],
      [2, ["r1"]],
      [3, ["r1"]],
    ]);
  });

  test("admits nobody into a running batch, and frees its reservation only when every member has finished", () => {
    const { kvCacheManager, engine } = setup("static-drop", { maxNumSeqs: 3, maxModelLen: 32 });
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
});

describe.each(["static", "static-drop"] as const)("%s", (variant) => {
  test("reserves ceil(maxModelLen / blockSize) blocks per member, and takes fewer members when blocks run short", () => {
    const { engine } = setup(variant, { numBlocks: 20, blockSize: 4, maxModelLen: 30, maxNumSeqs: 4 });
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
    const { engine, maxModelLen } = setup(variant, { maxNumBatchedTokens: 16, maxNumSeqs: 3 });
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
    const prompts = Array.from({ length: 16 }, (_, i) => randomTokens(random, 12 + i));
    const maxTokens = prompts.map((_, i) => 3 + ((i * 5) % 11));
    const runWith = (kind: "continuous" | Variant) => {
      const kvCacheManager = new KVCacheManager({ numBlocks, blockSize, enablePrefixCaching: false });
      const scheduler =
        kind === "continuous"
          ? new Scheduler({ kvCacheManager, ...limits, enableChunkedPrefill: true })
          : new StaticScheduler({ kvCacheManager, ...limits, dropFinishedRows: kind === "static-drop" });
      const engine = new FakeEngine({ scheduler, kvCacheManager, ...limits });
      engine.add(...prompts.map((prompt, i) => makeRequest(`r${i}`, prompt, { maxTokens: maxTokens[i] })));
      engine.runUntilIdle();
      return engine;
    };
    const staticEngine = runWith(variant);
    const continuousEngine = runWith("continuous");
    expect(staticEngine.aggregateWasteRatio()).toBeGreaterThan(0.5);
    expect(continuousEngine.aggregateWasteRatio()).toBeLessThan(0.2);
    expect(Math.max(...staticEngine.steps.map(({ stats }) => stats.wasteRatio))).toBeGreaterThan(0.8);
    expect(Object.fromEntries(staticEngine.tokens)).toEqual(Object.fromEntries(continuousEngine.tokens));
    prompts.forEach((prompt, i) => {
      expect(staticEngine.tokens.get(`r${i}`)).toEqual(referenceOutput(prompt, { maxTokens: maxTokens[i] }, 256));
    });
  });

  test("abort drops a waiting request, and aborting the last running member frees the whole batch", () => {
    const { kvCacheManager, scheduler, engine } = setup(variant, { maxNumSeqs: 2 });
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
    const { scheduler, engine } = setup(variant, { maxModelLen: 32 });
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
    const { kvCacheManager, scheduler, engine, maxModelLen } = setup(variant, {
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
