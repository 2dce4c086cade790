// The schedulers' waiting queue: arrival order, preempted requests back at the head, removal from
// anywhere; and a scheduler whose queue holds hundreds of thousands of requests aborts them all
// well within a second (it took minutes when each removal scanned the queue).
import { describe, expect, test } from "bun:test";
import { KVCacheManager } from "../../src/engine/kv-cache-manager.ts";
import { RequestQueue } from "../../src/engine/request-queue.ts";
import { Scheduler } from "../../src/engine/scheduler.ts";
import { StaticScheduler } from "../../src/engine/static-scheduler.ts";
import { makeRequest } from "../helpers/fake-engine.ts";

const ids = (queue: RequestQueue) => [...queue].map((request) => request.requestId);

describe("RequestQueue", () => {
  test("keeps arrival order; pushFront puts a request at the head", () => {
    const queue = new RequestQueue();
    for (const id of ["a", "b", "c"]) queue.push(makeRequest(id, [1]));
    queue.pushFront(makeRequest("p", [1]));
    expect(ids(queue)).toEqual(["p", "a", "b", "c"]);
    expect(queue.peek()?.requestId).toBe("p");
    expect(queue.shift()?.requestId).toBe("p");
    expect(ids(queue)).toEqual(["a", "b", "c"]);
    expect(queue.length).toBe(3);
  });

  test("removes from the middle, the head and the tail, and ignores what it does not hold", () => {
    const queue = new RequestQueue();
    for (const id of ["a", "b", "c", "d"]) queue.push(makeRequest(id, [1]));
    expect(queue.remove("b")?.requestId).toBe("b");
    expect(queue.remove("a")?.requestId).toBe("a");
    expect(queue.remove("d")?.requestId).toBe("d");
    expect(queue.remove("d")).toBeUndefined();
    expect(ids(queue)).toEqual(["c"]);
    expect([queue.has("c"), queue.has("a")]).toEqual([true, false]);
    queue.push(makeRequest("e", [1]));
    queue.pushFront(makeRequest("f", [1]));
    expect(ids(queue)).toEqual(["f", "c", "e"]);
    expect(queue.remove("c")?.requestId).toBe("c");
    expect([queue.shift()?.requestId, queue.shift()?.requestId, queue.shift()]).toEqual(["f", "e", undefined]);
    expect(queue.length).toBe(0);
  });

  test("refuses a request id it already holds", () => {
    const queue = new RequestQueue();
    queue.push(makeRequest("a", [1]));
    expect(() => queue.pushFront(makeRequest("a", [1]))).toThrow("already queued");
  });
});

describe("aborting a large queue", () => {
  const NUM_REQUESTS = 300_000;
  const kvCache = () => new KVCacheManager({ numBlocks: 64, blockSize: 4, enablePrefixCaching: true });
  const limits = { maxNumBatchedTokens: 64, maxNumSeqs: 8, maxModelLen: 64 };

  for (const kind of ["continuous", "static"] as const) {
    test(`the ${kind} scheduler aborts ${NUM_REQUESTS} waiting requests, in any order, within a second`, () => {
      const scheduler =
        kind === "continuous"
          ? new Scheduler({ kvCacheManager: kvCache(), ...limits, enableChunkedPrefill: true })
          : new StaticScheduler({ kvCacheManager: kvCache(), ...limits, dropFinishedRows: false });
      const requestIds = Array.from({ length: NUM_REQUESTS }, (_, i) => `r${i}`);
      for (const id of requestIds) scheduler.addRequest(makeRequest(id, [1, 2, 3]));
      // Every other one first, from the back, so that no removal is at an end of the queue.
      const started = performance.now();
      scheduler.abort(requestIds.filter((_, i) => i % 2 === 1).reverse());
      scheduler.abort(requestIds.filter((_, i) => i % 2 === 0));
      expect(performance.now() - started).toBeLessThan(1000);
      expect([scheduler.numWaiting, scheduler.numRunning]).toEqual([0, 0]);
      scheduler.checkInvariants();
    });
  }
});
