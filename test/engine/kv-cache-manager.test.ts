// The KV-cache manager: on-demand allocation, all-or-nothing failure, freeing, block tables,
// memory accounting, parallel sampling and its invariant checks.

import { describe, expect, test } from "bun:test";
import type { KVCacheBlock } from "../../src/engine/kv-cache-block.ts";
import { KVCacheManager } from "../../src/engine/kv-cache-manager.ts";
import type { MutableKVRequest } from "../helpers/kv-request.ts";

type TestRequest = MutableKVRequest;

function makeRequest(requestId: string, numTokens: number, firstToken = 0): TestRequest {
  const allTokenIds = Array.from({ length: numTokens }, (_, i) => firstToken + i);
  return {
    requestId,
    allTokenIds,
    numPromptTokens: numTokens,
    numComputedTokens: 0,
    blockHashes: [],
  };
}

/** Schedules the whole (rest of the) prompt in one step, as the scheduler would, and checks. */
function prefill(manager: KVCacheManager, request: TestRequest, live: TestRequest[]): void {
  const computed = manager.getComputedBlocks(request);
  const numNewTokens = request.allTokenIds.length - computed.numComputedTokens;
  expect(manager.allocateSlots(request, numNewTokens, computed.blocks)).not.toBeNull();
  request.numComputedTokens = request.allTokenIds.length;
  manager.checkInvariants(live);
}

/** Appends a sampled token and allocates its slot (one decode step). */
function decode(manager: KVCacheManager, request: TestRequest): KVCacheBlock[] | null {
  request.allTokenIds.push(1000 + request.allTokenIds.length);
  const newBlocks = manager.allocateSlots(request, 1);
  if (newBlocks !== null) request.numComputedTokens++;
  return newBlocks;
}

describe("allocateSlots", () => {
  test("allocates exactly the blocks needed, on demand, as decoding fills them", () => {
    const manager = new KVCacheManager({ numBlocks: 8, blockSize: 16, enablePrefixCaching: false });
    const request = makeRequest("a", 17);
    prefill(manager, request, [request]);
    expect(manager.numBlocksOf("a")).toBe(2);
    const newBlockCounts: number[] = [];
    while (request.allTokenIds.length < 33) newBlockCounts.push(decode(manager, request)!.length);
    // Tokens 18..32 fit in the second block; token 33 needs a third.
    expect(newBlockCounts).toEqual([...Array(15).fill(0), 1]);
    expect(manager.numBlocksOf("a")).toBe(3);
    manager.checkInvariants([request]);
  });

  test("grows the block table chunk by chunk during a chunked prefill", () => {
    const manager = new KVCacheManager({ numBlocks: 8, blockSize: 16, enablePrefixCaching: true });
    const request = makeRequest("a", 40);
    for (const [chunk, numBlocks] of [
      [10, 1],
      [10, 2],
      [20, 3],
    ] as const) {
      expect(manager.allocateSlots(request, chunk)).not.toBeNull();
      request.numComputedTokens += chunk;
      expect(manager.numBlocksOf("a")).toBe(numBlocks);
      manager.checkInvariants([request]);
    }
    expect(manager.blockIds("a")).toEqual([0, 1, 2]);
  });

  test("returns null and allocates nothing when the free blocks do not suffice", () => {
    const manager = new KVCacheManager({ numBlocks: 4, blockSize: 4, enablePrefixCaching: true });
    const a = makeRequest("a", 8);
    const b = makeRequest("b", 12, 100);
    prefill(manager, a, [a]);
    expect(manager.allocateSlots(b, 12)).toBeNull();
    expect(manager.numBlocksOf("b")).toBe(0);
    expect(manager.numFreeBlocks).toBe(2);
    expect(manager.allocateSlots(b, 8)).toHaveLength(2);
    manager.checkInvariants([a, b]);
  });

  test("counts cached free blocks as free, evicting them", () => {
    const manager = new KVCacheManager({ numBlocks: 4, blockSize: 4, enablePrefixCaching: true });
    const a = makeRequest("a", 16);
    prefill(manager, a, [a]);
    manager.free(a);
    expect(manager.stats().cachedFreeBlocks).toBe(4);
    const b = makeRequest("b", 16, 100);
    prefill(manager, b, [b]);
    expect(manager.numBlocksOf("b")).toBe(4);
    expect(manager.getComputedBlocks(makeRequest("a2", 16)).numComputedTokens).toBe(0);
  });

  test("rejects more tokens than the request has, negative counts and late prefix hits", () => {
    const manager = new KVCacheManager({ numBlocks: 4, blockSize: 4, enablePrefixCaching: true });
    const a = makeRequest("a", 8);
    expect(() => manager.allocateSlots(a, 9)).toThrow("would hold 9 tokens but has only 8");
    expect(() => manager.allocateSlots(a, -1)).toThrow(RangeError);
    prefill(manager, a, [a]);
    const b = makeRequest("b", 8);
    expect(manager.allocateSlots(b, 1)).not.toBeNull();
    b.numComputedTokens = 1;
    const hits = manager.getComputedBlocks(makeRequest("c", 8)).blocks;
    expect(() => manager.allocateSlots(b, 1, hits)).toThrow("prefix-cache hits given for request b");
  });

  test("rejects a block size that is not a positive integer", () => {
    const options = { numBlocks: 4, blockSize: 0, enablePrefixCaching: true };
    expect(() => new KVCacheManager(options)).toThrow(RangeError);
  });
});

describe("free", () => {
  test("releases every block of the request at once and forgets its block table", () => {
    const manager = new KVCacheManager({ numBlocks: 4, blockSize: 4, enablePrefixCaching: false });
    const a = makeRequest("a", 10);
    prefill(manager, a, [a]);
    manager.free(a);
    expect(manager.numFreeBlocks).toBe(4);
    expect(manager.blockIds("a")).toEqual([]);
    manager.free(a);
    a.numComputedTokens = 0;
    manager.checkInvariants([a]);
  });

  test("frees the last block first, so the end of a cached sequence is evicted first", () => {
    const manager = new KVCacheManager({ numBlocks: 4, blockSize: 4, enablePrefixCaching: true });
    const a = makeRequest("a", 12);
    prefill(manager, a, [a]);
    manager.free(a);
    // b takes the never-used block 3, then evicts block 2 (tokens 8..11), not blocks 0 and 1.
    const b = makeRequest("b", 8, 100);
    expect(manager.allocateSlots(b, 8)!.map((block) => block.blockId)).toEqual([3, 2]);
    const hits = manager.getComputedBlocks(makeRequest("a2", 13)).blocks;
    expect(hits.map((block) => block.blockId)).toEqual([0, 1]);
  });
});

describe("stats", () => {
  test("accounts waste: 17, 16 and 1 tokens in blocks of 16 leave 30 of 64 slots empty", () => {
    const manager = new KVCacheManager({ numBlocks: 8, blockSize: 16, enablePrefixCaching: false });
    const requests = [makeRequest("a", 17), makeRequest("b", 16, 100), makeRequest("c", 1, 200)];
    for (const request of requests) prefill(manager, request, requests);
    expect(manager.stats()).toEqual({
      totalBlocks: 8,
      usedBlocks: 4,
      freeBlocks: 4,
      cachedFreeBlocks: 0,
      tokensStored: 34,
      allocatedSlots: 64,
      wasteRatio: 30 / 64,
    });
    expect(manager.usage).toBe(0.5);
  });

  test("counts a shared prefix block once", () => {
    const manager = new KVCacheManager({ numBlocks: 8, blockSize: 4, enablePrefixCaching: true });
    const a = makeRequest("a", 6);
    const b = makeRequest("b", 6);
    prefill(manager, a, [a]);
    prefill(manager, b, [a, b]);
    // One shared full block plus two blocks of 2 tokens.
    expect(manager.stats()).toMatchObject({ usedBlocks: 3, tokensStored: 8, allocatedSlots: 12 });
  });

  test("reports no waste when nothing is allocated", () => {
    const manager = new KVCacheManager({ numBlocks: 2, blockSize: 4, enablePrefixCaching: true });
    expect(manager.stats()).toMatchObject({ usedBlocks: 0, freeBlocks: 2, wasteRatio: 0 });
  });
});

describe("parallel sampling (n > 1)", () => {
  test("children with the same prompt share its full blocks, even within one step", () => {
    const manager = new KVCacheManager({ numBlocks: 16, blockSize: 16, enablePrefixCaching: true });
    const children = [0, 1, 2].map((i) => makeRequest(`req-${i}`, 40));
    const live = [...children];
    // Scheduled one after the other in the same step, before any forward pass.
    for (const child of children) prefill(manager, child, live);
    const tables = children.map((child) => manager.blockIds(child.requestId));
    expect(tables[1]!.slice(0, 2)).toEqual(tables[0]!.slice(0, 2));
    expect(tables[2]!.slice(0, 2)).toEqual(tables[0]!.slice(0, 2));
    expect(new Set(tables.map((table) => table[2])).size).toBe(3);
    expect(manager.stats().usedBlocks).toBe(2 + 3);
    // Each child then samples its own tokens into its own blocks.
    for (let step = 0; step < 30; step++) {
      for (const child of children) expect(decode(manager, child)).not.toBeNull();
      manager.checkInvariants(live);
    }
    for (const child of children) {
      manager.free(child);
      live.splice(live.indexOf(child), 1);
      manager.checkInvariants(live);
    }
    expect(manager.numFreeBlocks).toBe(16);
  });

  test("children of a block-aligned prompt share all but its last block", () => {
    // The last prompt token is always recomputed, so its block cannot be a hit.
    const manager = new KVCacheManager({ numBlocks: 8, blockSize: 16, enablePrefixCaching: true });
    const [first, second] = [makeRequest("req-0", 32), makeRequest("req-1", 32)];
    prefill(manager, first!, [first!]);
    expect(manager.getComputedBlocks(second!).numComputedTokens).toBe(16);
    prefill(manager, second!, [first!, second!]);
    expect(manager.stats().usedBlocks).toBe(3);
  });

  test("children share nothing with prefix caching off", () => {
    const manager = new KVCacheManager({
      numBlocks: 16,
      blockSize: 16,
      enablePrefixCaching: false,
    });
    const children = [0, 1].map((i) => makeRequest(`req-${i}`, 40));
    for (const child of children) prefill(manager, child, children);
    expect(manager.stats().usedBlocks).toBe(6);
  });
});

describe("checkInvariants reports", () => {
  test("blocks held by a request that is no longer live", () => {
    const manager = new KVCacheManager({ numBlocks: 4, blockSize: 4, enablePrefixCaching: true });
    const a = makeRequest("a", 5);
    prefill(manager, a, [a]);
    expect(() => manager.checkInvariants([])).toThrow("request a is not live but holds blocks [0, 1]");
  });

  test("computed tokens without blocks (a preempted request not reset)", () => {
    const manager = new KVCacheManager({ numBlocks: 4, blockSize: 4, enablePrefixCaching: true });
    const a = makeRequest("a", 5);
    prefill(manager, a, [a]);
    manager.free(a);
    expect(() => manager.checkInvariants([a])).toThrow("request a has 5 computed tokens but no blocks");
  });

  test("computed tokens beyond the allocated slots", () => {
    const manager = new KVCacheManager({ numBlocks: 4, blockSize: 4, enablePrefixCaching: true });
    const a = makeRequest("a", 8);
    manager.allocateSlots(a, 4);
    a.numComputedTokens = 6;
    expect(() => manager.checkInvariants([a])).toThrow("request a has 6 computed tokens but slots for 4");
  });

  test("a ref count that disagrees with the block tables", () => {
    const manager = new KVCacheManager({ numBlocks: 4, blockSize: 4, enablePrefixCaching: true });
    const a = makeRequest("a", 4);
    prefill(manager, a, [a]);
    manager.blockPool.blocks[0]!.refCount = 2;
    expect(() => manager.checkInvariants([a])).toThrow("block 0 has refCount 2 but 1 block tables hold it");
  });

  test("a request listed twice", () => {
    const manager = new KVCacheManager({ numBlocks: 4, blockSize: 4, enablePrefixCaching: true });
    const a = makeRequest("a", 4);
    expect(() => manager.checkInvariants([a, a])).toThrow("request a is listed twice");
  });

  test("a cached block at a position whose hash differs", () => {
    const manager = new KVCacheManager({ numBlocks: 4, blockSize: 4, enablePrefixCaching: true });
    const a = makeRequest("a", 8);
    prefill(manager, a, [a]);
    a.blockHashes.reverse();
    expect(() => manager.checkInvariants([a])).toThrow("block 0 at position 0 of a holds another prefix's hash");
  });
});
