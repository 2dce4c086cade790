// The continuous-batching scheduler, driven step by step by a fake runner and a fake greedy model:
// budgets, ordering, chunked prefill, continuous batching, preemption, prefix caching, admission,
// aborts, stop conditions and a long randomized workload. Every step of every test also checks
// the scheduler's and the KV-cache manager's invariants and the step's budgets (FakeEngine).

import { describe, expect, test } from "bun:test";
import { KVCacheManager } from "../../src/engine/kv-cache-manager.ts";
import type { Request } from "../../src/engine/request.ts";
import { Scheduler, type SchedulerOptions } from "../../src/engine/scheduler.ts";
import {
  FakeEngine,
  makeRequest,
  makeRng,
  randomTokens,
  referenceOutput,
  type StepRecord,
  type TestRequestInit,
} from "../helpers/fake-engine.ts";

interface Setup {
  numBlocks?: number;
  blockSize?: number;
  enablePrefixCaching?: boolean;
  maxNumBatchedTokens?: number;
  maxNumSeqs?: number;
  maxModelLen?: number;
  enableChunkedPrefill?: boolean;
  longPrefillTokenThreshold?: number;
  asyncScheduling?: boolean;
}

function setup(config: Setup = {}) {
  const { numBlocks = 64, blockSize = 4, enablePrefixCaching = true } = config;
  const kvCacheManager = new KVCacheManager({ numBlocks, blockSize, enablePrefixCaching });
  const options: SchedulerOptions = {
    kvCacheManager,
    maxNumBatchedTokens: config.maxNumBatchedTokens ?? 64,
    maxNumSeqs: config.maxNumSeqs ?? 8,
    maxModelLen: config.maxModelLen ?? 64,
    enableChunkedPrefill: config.enableChunkedPrefill ?? true,
    longPrefillTokenThreshold: config.longPrefillTokenThreshold ?? 0,
    asyncScheduling: config.asyncScheduling ?? false,
  };
  const scheduler = new Scheduler(options);
  const engine = new FakeEngine({ ...options, scheduler });
  return { kvCacheManager, scheduler, engine, maxModelLen: options.maxModelLen };
}

/** A request with a seeded random prompt, remembered with what it should produce alone. */
function requestFactory(seed: number, maxModelLen: number) {
  const random = makeRng(seed);
  const expected = new Map<string, number[]>();
  const make = (requestId: string, promptLength: number, init: TestRequestInit = {}): Request => {
    const prompt = randomTokens(random, promptLength);
    expected.set(requestId, referenceOutput(prompt, init, maxModelLen));
    return makeRequest(requestId, prompt, init);
  };
  return { make, expected };
}

function scheduledIds(engine: FakeEngine, stepIndex: number): string[] {
  return [...engine.steps[stepIndex]!.output.numScheduledTokens.keys()];
}

describe("each step", () => {
  test("respects the token budget and maxNumSeqs, running requests first, then waiting ones in arrival order", () => {
    const { scheduler, engine, maxModelLen } = setup({ maxNumBatchedTokens: 32, maxNumSeqs: 3 });
    const { make, expected } = requestFactory(1, maxModelLen);
    const arrivalOrder = ["a", "b", "c", "d", "e", "f"];
    engine.add(...arrivalOrder.map((id, i) => make(id, 10 + 7 * i, { maxTokens: 4 + i })));
    const admissionOrder: string[] = [];
    while (scheduler.hasUnfinishedRequests()) {
      const numRunningBefore = scheduler.numRunning;
      const { output } = engine.step();
      // Budget and sequence cap are checked by FakeEngine; here the order within the step.
      if (output.scheduledNewRequests.length > 0) {
        expect(output.scheduledCachedRequests).toHaveLength(numRunningBefore);
      }
      admissionOrder.push(...output.scheduledNewRequests.map((data) => data.requestId));
      expect(output.stats.numRunning).toBeLessThanOrEqual(3);
    }
    expect(admissionOrder).toEqual(arrivalOrder);
    expect(Math.max(...engine.steps.map((s) => s.output.totalNumScheduledTokens))).toBe(32);
    expect(Object.fromEntries(engine.tokens)).toEqual(Object.fromEntries(expected));
  });

  test("admits no waiting request past a head that does not fit, even if a later one would", () => {
    const { kvCacheManager, engine, maxModelLen } = setup({ numBlocks: 16, blockSize: 4 });
    const { make } = requestFactory(2, maxModelLen);
    engine.add(make("long", 40, { maxTokens: 20 }));
    engine.step();
    engine.add(make("big", 40, { maxTokens: 1 }), make("small", 4, { maxTokens: 1 }));
    const { output } = engine.step();
    // "long" now holds 11 of the 16 blocks: "big" needs 10 and waits, and so must "small", which
    // would fit in the 5 left.
    expect(kvCacheManager.numFreeBlocks).toBe(5);
    expect(scheduledIds(engine, 1)).toEqual(["long"]);
    expect(output.stats.numWaiting).toBe(2);
  });
});

describe("chunked prefill", () => {
  test("splits a prompt longer than the budget over steps and samples only after the last chunk", () => {
    const { engine, maxModelLen } = setup({ maxNumBatchedTokens: 16 });
    const { make, expected } = requestFactory(3, maxModelLen);
    engine.add(make("a", 50, { maxTokens: 3 }));
    engine.runUntilIdle();
    const chunks = engine.steps.map(({ output }) => output.numScheduledTokens.get("a"));
    expect(chunks).toEqual([16, 16, 16, 2, 1, 1]);
    const samples = engine.steps.map(
      ({ output }) => [...output.scheduledNewRequests, ...output.scheduledCachedRequests][0]!.samplesNextToken,
    );
    expect(samples).toEqual([false, false, false, true, true, true]);
    expect(engine.tokens.get("a")).toEqual(expected.get("a")!);
  });

  test("longPrefillTokenThreshold caps each chunk so that decodes keep their place in the step", () => {
    const { engine, maxModelLen } = setup({ maxNumBatchedTokens: 64, longPrefillTokenThreshold: 8 });
    const { make, expected } = requestFactory(4, maxModelLen);
    engine.add(make("long", 40, { maxTokens: 2 }), make("short", 5, { maxTokens: 6 }));
    engine.runUntilIdle();
    expect(engine.steps[0]!.output.numScheduledTokens).toEqual(
      new Map([
        ["long", 8],
        ["short", 5],
      ]),
    );
    expect(engine.steps.every(({ output }) => (output.numScheduledTokens.get("long") ?? 0) <= 8)).toBe(true);
    expect(Object.fromEntries(engine.tokens)).toEqual(Object.fromEntries(expected));
  });

  test("without it a prompt runs whole: one larger than the step's remaining budget waits", () => {
    const { engine, maxModelLen } = setup({
      enableChunkedPrefill: false,
      maxNumBatchedTokens: 64,
      maxModelLen: 64,
    });
    const { make, expected } = requestFactory(5, maxModelLen);
    engine.add(make("a", 40, { maxTokens: 6 }), make("b", 64), make("c", 4, { maxTokens: 2 }));
    engine.runUntilIdle();
    // "b" needs 64 tokens in one step: it waits until "a" stops decoding, and "c" waits behind it.
    const scheduled =
      (id: string) =>
      ({ output }: StepRecord) =>
        output.numScheduledTokens.has(id);
    const firstStepOf = (id: string) => engine.steps.findIndex(scheduled(id));
    const lastStepOf = (id: string) => engine.steps.findLastIndex(scheduled(id));
    expect(firstStepOf("b")).toBe(lastStepOf("a") + 1);
    expect(engine.steps[firstStepOf("b")]!.output.numScheduledTokens.get("b")).toBe(64);
    expect(firstStepOf("c")).toBeGreaterThan(firstStepOf("b"));
    expect(Object.fromEntries(engine.tokens)).toEqual(Object.fromEntries(expected));
  });

  test("without it a budget below maxModelLen is refused, since such a prompt could never run", () => {
    expect(() => setup({ enableChunkedPrefill: false, maxNumBatchedTokens: 32, maxModelLen: 64 })).toThrow(
      "without chunked prefill a whole prompt must fit in one step",
    );
  });
});

describe("continuous batching", () => {
  test("a short request arriving while long ones run joins at once and finishes first", () => {
    const { engine, maxModelLen } = setup({ maxModelLen: 128, numBlocks: 128 });
    const { make, expected } = requestFactory(6, maxModelLen);
    engine.add(make("long-1", 30, { maxTokens: 80 }), make("long-2", 30, { maxTokens: 80 }));
    for (let i = 0; i < 5; i++) engine.step();
    engine.add(make("short", 8, { maxTokens: 5 }));
    const arrivalStep = engine.steps.length;
    engine.runUntilIdle();
    expect(engine.steps[arrivalStep]!.output.scheduledNewRequests.map((d) => d.requestId)).toEqual(["short"]);
    const finishStep = (id: string) =>
      engine.steps.findIndex(({ outputs }) => outputs.some((out) => out.requestId === id && out.finished));
    expect(finishStep("short")).toBe(arrivalStep + 4);
    expect(finishStep("short")).toBeLessThan(finishStep("long-1"));
    expect(Object.fromEntries(engine.tokens)).toEqual(Object.fromEntries(expected));
  });

  test("a finished request's blocks are free for the admissions of the very next step", () => {
    const { kvCacheManager, scheduler, engine } = setup({
      numBlocks: 8,
      blockSize: 4,
      maxModelLen: 32,
      enablePrefixCaching: false,
    });
    const { make } = requestFactory(7, 32);
    engine.add(make("a", 20, { maxTokens: 3 }), make("b", 16, { maxTokens: 2 }));
    engine.step();
    engine.step();
    // "a" holds 6 of the 8 blocks; "b" needs 4 and waits.
    expect(scheduler.numWaiting).toBe(1);
    const { outputs } = engine.step();
    expect(outputs).toEqual([expect.objectContaining({ requestId: "a", finished: true, finishReason: "length" })]);
    expect(kvCacheManager.numFreeBlocks).toBe(8);
    const { output } = engine.step();
    expect(output.scheduledNewRequests.map((data) => data.requestId)).toEqual(["b"]);
    expect(output.finishedRequestIds).toEqual(["a"]);
  });
});

describe("preemption", () => {
  for (const enableChunkedPrefill of [true, false]) {
    test(`under a tiny KV cache every request still gets its solo tokens (chunked prefill ${enableChunkedPrefill})`, () => {
      const maxModelLen = 48;
      const { kvCacheManager, scheduler, engine } = setup({
        numBlocks: 12,
        blockSize: 4,
        maxModelLen,
        maxNumBatchedTokens: 48,
        enableChunkedPrefill,
      });
      const random = makeRng(8);
      const { make, expected } = requestFactory(9, maxModelLen);
      for (let i = 0; i < 10; i++) {
        const promptLength = 4 + Math.floor(random() * 16);
        engine.add(make(`r${i}`, promptLength, { maxTokens: 10 + Math.floor(random() * 20) }));
      }
      engine.runUntilIdle();
      const preempted = engine.steps.flatMap(({ output }) => output.preemptedRequestIds);
      expect(preempted.length).toBeGreaterThan(0);
      expect(scheduler.stats().numPreemptions).toBe(preempted.length);
      expect(Object.fromEntries(engine.tokens)).toEqual(Object.fromEntries(expected));
      expect(kvCacheManager.numFreeBlocks).toBe(12);
    });
  }

  test("preempts the newest running request, which resumes from the head of the queue", () => {
    const { engine } = setup({
      numBlocks: 6,
      blockSize: 4,
      maxModelLen: 24,
      maxNumBatchedTokens: 24,
      maxNumSeqs: 2,
    });
    const { make, expected } = requestFactory(10, 24);
    engine.add(make("old", 8, { maxTokens: 12 }), make("new", 8, { maxTokens: 12 }), make("later", 4));
    let step = engine.step();
    while (step.output.preemptedRequestIds.length === 0) step = engine.step();
    expect(step.output.preemptedRequestIds).toEqual(["new"]);
    expect(step.output.numScheduledTokens.has("old")).toBe(true);
    engine.runUntilIdle();
    // "later" would fit beside "old" at once, but the preempted request is ahead of it.
    const admissions = engine.steps.flatMap(({ output }) => output.scheduledNewRequests.map((data) => data.requestId));
    expect(admissions.slice(0, 3)).toEqual(["old", "new", "new"]);
    expect(admissions.indexOf("later")).toBe(3);
    expect(Object.fromEntries(engine.tokens)).toEqual(Object.fromEntries(expected));
  });
});

describe("prefix caching", () => {
  test("a request sharing a cached prefix schedules only the uncached tokens and produces the same output", () => {
    const { scheduler, engine } = setup({ blockSize: 4 });
    const random = makeRng(11);
    const prefix = randomTokens(random, 32);
    const first = [...prefix, ...randomTokens(random, 3)];
    const second = [...prefix, ...randomTokens(random, 5)];
    engine.add(makeRequest("first", first, { maxTokens: 4 }));
    engine.runUntilIdle();
    engine.add(makeRequest("second", second, { maxTokens: 8 }));
    const { output } = engine.step();
    expect(output.scheduledNewRequests[0]).toMatchObject({ requestId: "second", numComputedTokens: 32 });
    expect(output.numScheduledTokens.get("second")).toBe(5);
    engine.runUntilIdle();
    expect(engine.tokens.get("second")).toEqual(referenceOutput(second, { maxTokens: 8 }, 64));
    expect(scheduler.stats().prefixCacheHitRate).toBeCloseTo(32 / (35 + 37));

    // And the same request without prefix caching computes everything and gets the same tokens.
    const uncached = setup({ blockSize: 4, enablePrefixCaching: false });
    uncached.engine.add(makeRequest("second", second, { maxTokens: 8 }));
    uncached.engine.runUntilIdle();
    expect(uncached.engine.steps[0]!.output.numScheduledTokens.get("second")).toBe(37);
    expect(uncached.engine.tokens.get("second")).toEqual(engine.tokens.get("second")!);
  });

  test("requests with the same prompt admitted in one step share its full blocks (parallel sampling)", () => {
    const { kvCacheManager, engine } = setup({ blockSize: 4 });
    const prompt = randomTokens(makeRng(12), 21);
    engine.add(...["n0", "n1", "n2"].map((id) => makeRequest(id, prompt, { maxTokens: 6 })));
    const { output } = engine.step();
    expect(output.scheduledNewRequests.map((d) => d.numComputedTokens)).toEqual([0, 20, 20]);
    // 6 blocks for the first, then one private block each for the others' last prompt token.
    expect(kvCacheManager.stats().usedBlocks).toBe(8);
    engine.runUntilIdle();
    const expected = referenceOutput(prompt, { maxTokens: 6 }, 64);
    for (const id of ["n0", "n1", "n2"]) expect(engine.tokens.get(id)).toEqual(expected);
  });
});

describe("admission and abort", () => {
  test("rejects a prompt longer than maxModelLen, or empty, at admission with a clear message", () => {
    const { scheduler, engine } = setup({ maxModelLen: 64 });
    const tooLong = makeRequest("too-long", new Array(65).fill(1));
    const empty = makeRequest("empty", []);
    engine.add(tooLong, empty, makeRequest("fits", new Array(64).fill(1)));
    expect(tooLong.status).toBe("FINISHED_IGNORED");
    expect(scheduler.numWaiting).toBe(1);
    const { output, outputs } = engine.step();
    expect([...output.numScheduledTokens.keys()]).toEqual(["fits"]);
    expect(outputs.slice(0, 2)).toEqual([
      {
        requestId: "too-long",
        newTokenIds: [],
        finished: true,
        finishReason: "rejected",
        stopReason: null,
        error: "prompt has 65 tokens; max model length is 64. Shorten the prompt or raise --max-model-len.",
        // Never scheduled, so it never waited in the running sense.
        queueSeconds: null,
      },
      expect.objectContaining({
        requestId: "empty",
        finishReason: "rejected",
        error: "prompt is empty; at least one token is needed",
      }),
    ]);
    // A prompt of exactly maxModelLen runs, and stops after one token: no position is left.
    expect(outputs[2]).toMatchObject({ requestId: "fits", finished: true, finishReason: "length" });
    expect(outputs[2]!.queueSeconds).toBeGreaterThanOrEqual(0);
    expect(engine.tokens.get("fits")).toHaveLength(1);
  });

  test("a rejected request alone still makes one step, to report it", () => {
    const { scheduler, engine } = setup();
    engine.add(makeRequest("too-long", new Array(100).fill(1)));
    expect(scheduler.hasUnfinishedRequests()).toBe(true);
    expect(engine.runUntilIdle()).toBe(1);
    expect(engine.steps[0]!.output.totalNumScheduledTokens).toBe(0);
    expect(engine.finished.get("too-long")?.finishReason).toBe("rejected");
  });

  test("abort frees the blocks of running requests at once and drops waiting ones", () => {
    const { kvCacheManager, scheduler, engine } = setup({ maxNumSeqs: 2 });
    const { make } = requestFactory(13, 64);
    const requests = ["a", "b", "c"].map((id) => make(id, 20, { maxTokens: 30 }));
    engine.add(...requests);
    engine.step();
    expect([scheduler.numRunning, scheduler.numWaiting]).toEqual([2, 1]);
    scheduler.abort(["a", "c", "unknown"]);
    expect([scheduler.numRunning, scheduler.numWaiting]).toEqual([1, 0]);
    expect(kvCacheManager.numBlocksOf("a")).toBe(0);
    expect(kvCacheManager.numFreeBlocks).toBe(64 - kvCacheManager.numBlocksOf("b"));
    expect(requests.map((request) => request.status)).toEqual(["FINISHED_ABORTED", "RUNNING", "FINISHED_ABORTED"]);
    scheduler.checkInvariants();
    expect(engine.step().output.finishedRequestIds.sort()).toEqual(["a", "c"]);
  });

  test("a request aborted between schedule and update is skipped by the update", () => {
    const { kvCacheManager, scheduler } = setup();
    scheduler.addRequest(makeRequest("a", [1, 2, 3]));
    const output = scheduler.schedule();
    scheduler.abort(["a"]);
    expect(scheduler.updateFromOutput(output, new Map([["a", [7]]]))).toEqual([]);
    expect(kvCacheManager.numFreeBlocks).toBe(64);
    expect(scheduler.hasUnfinishedRequests()).toBe(false);
  });

  test("schedule and updateFromOutput must alternate", () => {
    const { scheduler } = setup();
    scheduler.addRequest(makeRequest("a", [1, 2, 3]));
    const output = scheduler.schedule();
    expect(() => scheduler.schedule()).toThrow("schedule() called again");
    expect(() => scheduler.updateFromOutput(output, new Map())).toThrow("no token sampled for request a");
  });
});

describe("stop conditions", () => {
  const prompt = randomTokens(makeRng(14), 10);
  const free = referenceOutput(prompt, { maxTokens: 12 }, 64);

  function run(init: TestRequestInit, maxModelLen = 64) {
    const { engine } = setup({ maxModelLen });
    engine.add(makeRequest("a", prompt, init));
    engine.runUntilIdle();
    return { tokens: engine.tokens.get("a")!, result: engine.finished.get("a")! };
  }

  test("a stop token id ends the request and is reported as the stop reason", () => {
    const { tokens, result } = run({ maxTokens: 12, stopTokenIds: [free[4]!] });
    expect(tokens).toEqual(free.slice(0, 5));
    expect(result).toMatchObject({ finishReason: "stop", stopReason: free[4] });
  });

  test("EOS stops, unless ignoreEos, and never before minTokens", () => {
    expect(run({ maxTokens: 12, eosTokenIds: [free[2]!] }).tokens).toEqual(free.slice(0, 3));
    expect(run({ maxTokens: 12, eosTokenIds: [free[2]!], ignoreEos: true }).tokens).toEqual(free);
    const late = run({ maxTokens: 12, minTokens: 4, eosTokenIds: [free[2]!, free[6]!] });
    expect(late.tokens).toEqual(free.slice(0, 7));
    expect(late.result).toMatchObject({ finishReason: "stop", stopReason: null });
  });

  test("maxTokens and maxModelLen end the request with reason length", () => {
    const capped = run({ maxTokens: 5 });
    expect(capped).toMatchObject({ tokens: free.slice(0, 5), result: { finishReason: "length" } });
    // 10 prompt tokens + 6 outputs = 16 = maxModelLen: no position left for another token.
    const full = run({ maxTokens: 12 }, 16);
    expect(full).toMatchObject({ tokens: free.slice(0, 6), result: { finishReason: "length" } });
  });
});

describe("async scheduling", () => {
  test("step N+1 is scheduled before step N is reported: a decode goes with its token left out", () => {
    const { scheduler, engine } = setup({ asyncScheduling: true });
    const { make, expected } = requestFactory(31, 64);
    engine.add(make("a", 6, { maxTokens: 5 }));
    const prefill = scheduler.schedule();
    expect(prefill.scheduledNewRequests[0]).toMatchObject({ numComputedTokens: 0, samplesNextToken: true });
    // The prompt's step has not been reported; the next one already decodes the token it samples.
    const decode = scheduler.schedule();
    expect(decode.scheduledCachedRequests).toEqual([
      { requestId: "a", newTokenIds: [], newBlockIds: [], numComputedTokens: 6, samplesNextToken: true },
    ]);
    expect(() => scheduler.schedule()).toThrow(/2 steps not yet updated/);
    expect(() => scheduler.updateFromOutput(decode, new Map())).toThrow(/oldest schedule\(\) not yet updated/);
    const a = expected.get("a")!;
    expect(scheduler.updateFromOutput(prefill, new Map([["a", [a[0]!]]]))[0]!.newTokenIds).toEqual([a[0]!]);
    expect(scheduler.updateFromOutput(decode, new Map([["a", [a[1]!]]]))[0]!.newTokenIds).toEqual([a[1]!]);
  });

  test("a request whose token in flight is its last is not scheduled again", () => {
    const { engine } = setup({ asyncScheduling: true });
    const { make, expected } = requestFactory(32, 64);
    engine.add(make("a", 5, { maxTokens: 3 }), make("b", 7, { maxTokens: 1 }));
    engine.runUntilIdle();
    const computed = (id: string) =>
      engine.steps.reduce((sum, { output }) => sum + (output.numScheduledTokens.get(id) ?? 0), 0);
    // Prompt and every output token but the last: nothing computed in vain.
    expect(computed("a")).toBe(5 + 2);
    expect(computed("b")).toBe(7);
    expect(engine.tokens.get("a")).toEqual(expected.get("a")!);
    expect(engine.tokens.get("b")).toEqual(expected.get("b")!);
  });

  test("a request preempted while its step was in flight keeps the token that step sampled", () => {
    const { scheduler } = setup({ asyncScheduling: true, numBlocks: 4, blockSize: 4, maxModelLen: 16 });
    const a = makeRequest("a", [1, 2, 3, 4, 5, 6, 7], { maxTokens: 3 });
    const b = makeRequest("b", [8, 9, 10, 11, 12, 13, 14], { maxTokens: 8 });
    scheduler.addRequest(a);
    scheduler.addRequest(b);
    const prefill = scheduler.schedule(); // both prompts: all four blocks
    const first = scheduler.schedule(); // both decode into their second block
    scheduler.updateFromOutput(
      prefill,
      new Map([
        ["a", [100]],
        ["b", [200]],
      ]),
    );
    // a's next token needs a third block: the newest request, b, gives its blocks back while
    // `first` still computes it.
    const second = scheduler.schedule();
    expect(second.preemptedRequestIds).toEqual(["b"]);
    expect(b.status).toBe("PREEMPTED");
    const reported = scheduler.updateFromOutput(
      first,
      new Map([
        ["a", [101]],
        ["b", [201]],
      ]),
    );
    expect(reported.find((o) => o.requestId === "b")).toMatchObject({ newTokenIds: [201], finished: false });
    expect(b.outputTokenIds).toEqual([200, 201]);
    expect(b.numComputedTokens).toBe(0);
    expect(scheduler.updateFromOutput(second, new Map([["a", [102]]]))[0]).toMatchObject({ finished: true });
    scheduler.checkInvariants();
    // Resumed once a is done, it recomputes prompt and both tokens, and samples its third.
    const resumed = scheduler.schedule();
    expect(resumed.scheduledNewRequests.find((r) => r.requestId === "b")?.tokenIds).toEqual([
      8, 9, 10, 11, 12, 13, 14, 200, 201,
    ]);
  });

  test("a request that stops on EOS runs one step in vain, whose token is dropped", () => {
    const { engine } = setup({ asyncScheduling: true });
    const prompt = randomTokens(makeRng(33), 6);
    const eos = referenceOutput(prompt, { maxTokens: 8 }, 64)[2]!;
    const init = { maxTokens: 8, eosTokenIds: [eos] };
    engine.add(makeRequest("a", prompt, init));
    engine.runUntilIdle();
    expect(engine.finished.get("a")).toMatchObject({ finishReason: "stop" });
    expect(engine.tokens.get("a")).toEqual(referenceOutput(prompt, init, 64));
    expect(engine.tokens.get("a")!.length).toBe(3);
    const computed = engine.steps.reduce((sum, { output }) => sum + (output.numScheduledTokens.get("a") ?? 0), 0);
    // The prompt, the positions of the first two outputs, and the EOS's, scheduled before it was known.
    expect(computed).toBe(6 + 3);
  });
});

describe("randomized workload", () => {
  for (const [enableChunkedPrefill, asyncScheduling] of [
    [true, false],
    [false, false],
    [true, true],
    [false, true],
  ]) {
    test(`2000 steps of arrivals, shared prefixes and aborts keep every invariant (chunked prefill ${enableChunkedPrefill}${asyncScheduling ? ", async scheduling" : ""})`, () => {
      const numBlocks = 40;
      const maxModelLen = 128;
      const { kvCacheManager, scheduler, engine } = setup({
        numBlocks,
        blockSize: 4,
        maxModelLen,
        maxNumBatchedTokens: 128,
        maxNumSeqs: 8,
        enableChunkedPrefill,
        asyncScheduling,
      });
      const random = makeRng((enableChunkedPrefill ? 15 : 16) + (asyncScheduling ? 2 : 0));
      const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
      const prefixes = Array.from({ length: 3 }, () => randomTokens(random, int(8, 60)));
      const expected = new Map<string, number[]>();
      const aborted = new Set<string>();
      let live: string[] = [];
      for (let step = 0; step < 2000; step++) {
        if (scheduler.numWaiting < 10 && random() < 0.3) {
          const requestId = `r${step}`;
          const length = int(1, 140);
          const own = randomTokens(random, length);
          const prompt = random() < 0.5 ? [...prefixes[int(0, 2)]!, ...own].slice(0, length) : own;
          const init = { maxTokens: int(1, 40), eosTokenIds: random() < 0.3 ? [int(0, 999)] : [] };
          expected.set(requestId, referenceOutput(prompt, init, maxModelLen));
          engine.add(makeRequest(requestId, prompt, init));
          live.push(requestId);
        }
        const { output } = engine.step();
        // As vLLM: a step short of memory admits nobody, who would only be preempted next.
        if (output.preemptedRequestIds.length > 0 && output.scheduledNewRequests.length > 0) {
          throw new Error(`step ${step} preempted and admitted in the same step`);
        }
        live = live.filter((requestId) => !engine.finished.has(requestId));
        if (random() < 0.02 && live.length > 0) {
          const requestId = live.splice(int(0, live.length - 1), 1)[0]!;
          scheduler.abort([requestId]);
          aborted.add(requestId);
          scheduler.checkInvariants();
        }
      }
      engine.runUntilIdle();
      expect(kvCacheManager.numFreeBlocks).toBe(numBlocks);
      const stats = scheduler.stats();
      expect(stats).toMatchObject({ numRunning: 0, numWaiting: 0, allocatedSlots: 0 });
      expect(stats.numPreemptions).toBeGreaterThan(0);
      expect(stats.prefixCacheHitRate).toBeGreaterThan(0);
      let numCompared = 0;
      for (const [requestId, tokens] of expected) {
        const result = engine.finished.get(requestId);
        if (aborted.has(requestId)) continue;
        if (result?.finishReason === "rejected") {
          expect(result.error).toContain("max model length is 128");
          continue;
        }
        expect(engine.tokens.get(requestId)).toEqual(tokens);
        numCompared++;
      }
      expect(numCompared).toBeGreaterThan(150);
    });
  }
});
