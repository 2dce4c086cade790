// Prefix caching: block hashes, hits on shared prefixes, reuse of freed cached blocks, LRU
// eviction, reset, and the same workloads with caching off.

import { describe, expect, test } from "bun:test";
import { type BlockHash, hashBlockTokens, requestBlockHashes } from "../../src/engine/block-hash.ts";
import { KVCacheManager } from "../../src/engine/kv-cache-manager.ts";
import type { MutableKVRequest } from "../helpers/kv-request.ts";

type TestRequest = MutableKVRequest;

function makeRequest(requestId: string, allTokenIds: number[], extraKey?: string): TestRequest {
  return {
    requestId,
    allTokenIds,
    numPromptTokens: allTokenIds.length,
    numComputedTokens: 0,
    blockHashes: [],
    extraKey,
  };
}

const range = (start: number, length: number) => Array.from({ length }, (_, i) => start + i);

/** Schedules a request's whole prompt as the scheduler would; returns the prefix-hit tokens. */
function prefill(manager: KVCacheManager, request: TestRequest): number {
  const computed = manager.getComputedBlocks(request);
  const numNewTokens = request.allTokenIds.length - computed.numComputedTokens;
  expect(manager.allocateSlots(request, numNewTokens, computed.blocks)).not.toBeNull();
  request.numComputedTokens = request.allTokenIds.length;
  return computed.numComputedTokens;
}

/** The prefix-hit tokens a new request with these tokens would get. */
function hitTokens(manager: KVCacheManager, tokenIds: number[], extraKey?: string): number {
  return manager.getComputedBlocks(makeRequest("probe", tokenIds, extraKey)).numComputedTokens;
}

const SHARED = range(0, 40);

describe("block hashes", () => {
  test("depend on the parent, the tokens and the extra key", () => {
    const tokens = range(0, 16);
    const hash = hashBlockTokens(null, tokens);
    expect(hashBlockTokens(null, tokens)).toBe(hash);
    expect(hashBlockTokens(hash, tokens)).not.toBe(hash);
    expect(hashBlockTokens(null, [...tokens.slice(0, 15), 99])).not.toBe(hash);
    expect(hashBlockTokens(null, tokens, "lora-a")).not.toBe(hash);
    const otherAdapter = hashBlockTokens(null, tokens, "lora-b");
    expect(hashBlockTokens(null, tokens, "lora-a")).not.toBe(otherAdapter);
    expect(hashBlockTokens(null, tokens, "")).toBe(hash);
  });

  test("are 128-bit and distinct over many blocks", () => {
    const seen = new Set<BlockHash>();
    let parent: BlockHash | null = null;
    for (let i = 0; i < 20_000; i++) {
      const hash: BlockHash = hashBlockTokens(i % 2 === 0 ? null : parent, [i & 0xff, i >> 8]);
      seen.add(hash);
      parent = hash;
    }
    expect(seen.size).toBe(20_000);
    const hashes = [...seen];
    expect(hashes.every((hash) => hash >= 0n && hash < 1n << 128n)).toBe(true);
    // Both halves carry entropy: about half the hashes have their top bit set, and so the low half.
    const topBitSet = hashes.filter((hash) => hash >> 127n === 1n).length;
    const lowTopBitSet = hashes.filter((hash) => (hash >> 63n) & 1n).length;
    for (const count of [topBitSet, lowTopBitSet]) {
      expect(Math.abs(count - 10_000)).toBeLessThan(500);
    }
  });

  test("extend incrementally as tokens are appended, covering full blocks only", () => {
    const tokens = range(0, 10);
    const hashes: BlockHash[] = [];
    expect(requestBlockHashes(tokens, 4, hashes)).toBe(hashes);
    expect(hashes).toHaveLength(2);
    tokens.push(10, 11, 12);
    requestBlockHashes(tokens, 4, hashes);
    expect(hashes).toEqual(requestBlockHashes(tokens, 4));
    expect(hashes).toEqual([
      hashBlockTokens(null, range(0, 4)),
      hashBlockTokens(hashes[0]!, range(4, 4)),
      hashBlockTokens(hashes[1]!, range(8, 4)),
    ]);
  });
});

describe("prefix cache", () => {
  test("a request sharing a prefix computes only what follows its shared full blocks", () => {
    const manager = new KVCacheManager({ numBlocks: 16, blockSize: 16, enablePrefixCaching: true });
    const a = makeRequest("a", [...SHARED, ...range(100, 10)]);
    const b = makeRequest("b", [...SHARED, ...range(200, 30)]);
    expect(prefill(manager, a)).toBe(0);
    expect(prefill(manager, b)).toBe(32);
    const [tableA, tableB] = [manager.blockIds("a"), manager.blockIds("b")];
    expect(tableB.slice(0, 2)).toEqual(tableA.slice(0, 2));
    expect(tableB[2]).not.toBe(tableA[2]);
    expect(manager.blockPool.blocks[tableA[0]!]!.refCount).toBe(2);
    expect(manager.prefixCacheStats).toEqual({ queries: 50 + 70, hits: 32 });
    manager.checkInvariants([a, b]);
  });

  test("never hits the whole prompt: the last token is always computed", () => {
    const manager = new KVCacheManager({ numBlocks: 16, blockSize: 16, enablePrefixCaching: true });
    prefill(manager, makeRequest("a", range(0, 48)));
    expect(hitTokens(manager, range(0, 48))).toBe(32);
    expect(hitTokens(manager, range(0, 49))).toBe(48);
    expect(hitTokens(manager, range(0, 1))).toBe(0);
  });

  test("stops at the first block that differs, even if later blocks match", () => {
    const manager = new KVCacheManager({ numBlocks: 16, blockSize: 4, enablePrefixCaching: true });
    prefill(manager, makeRequest("a", range(0, 13)));
    const b = makeRequest("b", [...range(0, 4), 99, ...range(5, 8)]);
    expect(manager.getComputedBlocks(b).numComputedTokens).toBe(4);
  });

  test("requests with different extra keys share nothing", () => {
    const manager = new KVCacheManager({ numBlocks: 16, blockSize: 16, enablePrefixCaching: true });
    prefill(manager, makeRequest("a", SHARED, "adapter-1"));
    expect(hitTokens(manager, SHARED, "adapter-2")).toBe(0);
    expect(hitTokens(manager, SHARED, "adapter-1")).toBe(32);
  });

  test("blocks filled by decoding are cached too", () => {
    const manager = new KVCacheManager({ numBlocks: 16, blockSize: 4, enablePrefixCaching: true });
    const a = makeRequest("a", range(0, 3));
    prefill(manager, a);
    for (const token of [3, 4, 5]) {
      a.allTokenIds.push(token);
      manager.allocateSlots(a, 1);
      a.numComputedTokens++;
    }
    expect(hitTokens(manager, range(0, 7))).toBe(4);
  });

  test("freed blocks keep their hashes and are reused by a later request", () => {
    const manager = new KVCacheManager({ numBlocks: 8, blockSize: 16, enablePrefixCaching: true });
    const a = makeRequest("a", [...SHARED, 1]);
    prefill(manager, a);
    const sharedBlocks = manager.blockIds("a").slice(0, 2);
    manager.free(a);
    expect(manager.stats()).toMatchObject({ usedBlocks: 0, cachedFreeBlocks: 2 });
    const b = makeRequest("b", [...SHARED, 2, 3]);
    expect(prefill(manager, b)).toBe(32);
    expect(manager.blockIds("b").slice(0, 2)).toEqual(sharedBlocks);
    expect(manager.stats()).toMatchObject({ usedBlocks: 3, cachedFreeBlocks: 0 });
    manager.checkInvariants([b]);
  });

  test("a prefix hit on free blocks needs only the remaining blocks to be free", () => {
    const manager = new KVCacheManager({ numBlocks: 3, blockSize: 4, enablePrefixCaching: true });
    const a = makeRequest("a", range(0, 12));
    prefill(manager, a);
    manager.free(a);
    // 3 blocks free, 2 of them hits for b, whose 13 tokens need 2 more: only 1 is left.
    const b = makeRequest("b", [...range(0, 8), ...range(50, 5)]);
    const computed = manager.getComputedBlocks(b);
    expect(computed.numComputedTokens).toBe(8);
    expect(manager.allocateSlots(b, 5, computed.blocks)).toBeNull();
    expect(manager.stats()).toMatchObject({ usedBlocks: 0, cachedFreeBlocks: 3 });
    manager.checkInvariants([b]);
    // 2 hits + 1 new block: the third cached block, the tail of the sequence, is evicted.
    const c = makeRequest("c", [...range(0, 8), 60, 61]);
    expect(prefill(manager, c)).toBe(8);
    expect(manager.stats()).toMatchObject({ usedBlocks: 3, cachedFreeBlocks: 0 });
  });

  test("evicts cached blocks in LRU order when space is needed", () => {
    const manager = new KVCacheManager({ numBlocks: 6, blockSize: 4, enablePrefixCaching: true });
    const first = makeRequest("first", range(0, 9));
    const second = makeRequest("second", range(100, 9));
    prefill(manager, first);
    prefill(manager, second);
    manager.free(first);
    manager.free(second);
    // 2 unhashed partial blocks go first, then the cached blocks of `first`, freed earlier.
    const filler = makeRequest("filler", range(500, 16));
    prefill(manager, filler);
    manager.free(filler);
    expect(hitTokens(manager, range(0, 9))).toBe(0);
    expect(hitTokens(manager, range(100, 9))).toBe(8);
  });

  test("a hit refreshes a block's place in the LRU order", () => {
    const manager = new KVCacheManager({ numBlocks: 4, blockSize: 4, enablePrefixCaching: true });
    const old = makeRequest("old", range(0, 5));
    const young = makeRequest("young", range(100, 5));
    prefill(manager, old);
    prefill(manager, young);
    manager.free(old);
    manager.free(young);
    const reuse = makeRequest("reuse", range(0, 5));
    expect(prefill(manager, reuse)).toBe(4);
    manager.free(reuse);
    // Now `young` is the least recently used: after the two unhashed partial blocks, three new
    // blocks evict it, not `old`.
    prefill(manager, makeRequest("filler", range(500, 12)));
    expect(hitTokens(manager, range(100, 5))).toBe(0);
    expect(hitTokens(manager, range(0, 5))).toBe(4);
  });

  test("a preempted request gets back its own prompt and output blocks", () => {
    const manager = new KVCacheManager({ numBlocks: 8, blockSize: 4, enablePrefixCaching: true });
    const a = makeRequest("a", range(0, 6));
    prefill(manager, a);
    for (const token of [6, 7, 8]) {
      a.allTokenIds.push(token);
      manager.allocateSlots(a, 1);
      a.numComputedTokens++;
    }
    manager.free(a);
    a.numComputedTokens = 0;
    a.allTokenIds.push(9);
    expect(prefill(manager, a)).toBe(8);
    manager.checkInvariants([a]);
  });

  test("resetPrefixCache forgets cached blocks, and only while no block is in use", () => {
    const manager = new KVCacheManager({ numBlocks: 8, blockSize: 16, enablePrefixCaching: true });
    const a = makeRequest("a", SHARED);
    prefill(manager, a);
    expect(manager.resetPrefixCache()).toBe(false);
    manager.free(a);
    expect(manager.resetPrefixCache()).toBe(true);
    expect(manager.stats().cachedFreeBlocks).toBe(0);
    expect(hitTokens(manager, SHARED)).toBe(0);
    manager.checkInvariants([]);
  });

  test("with caching off nothing is reused", () => {
    const manager = new KVCacheManager({ numBlocks: 8, blockSize: 16, enablePrefixCaching: false });
    const a = makeRequest("a", SHARED);
    prefill(manager, a);
    const b = makeRequest("b", SHARED);
    expect(prefill(manager, b)).toBe(0);
    expect(manager.stats()).toMatchObject({ usedBlocks: 6, cachedFreeBlocks: 0 });
    manager.free(a);
    const computed = manager.getComputedBlocks(makeRequest("c", SHARED));
    expect(computed).toEqual({ blocks: [], numComputedTokens: 0 });
    expect(manager.blockPool.blocks.every((block) => block.blockHash === null)).toBe(true);
    expect(manager.prefixCacheStats).toEqual({ queries: 0, hits: 0 });
    manager.checkInvariants([b]);
  });
});
