// The block pool: free queue order, ref counts, eviction of cached blocks, and its own checks.

import { describe, expect, test } from "bun:test";
import { hashBlockTokens } from "../../src/engine/block-hash.ts";
import { BlockPool } from "../../src/engine/block-pool.ts";
import { FreeKVCacheBlockQueue, KVCacheBlock } from "../../src/engine/kv-cache-block.ts";

const ids = (blocks: readonly KVCacheBlock[]) => blocks.map((block) => block.blockId);
const hashOf = (token: number) => hashBlockTokens(null, [token]);

/** Caches each block under hashOf(its id), as if each were one full block of its own request. */
function cacheEach(pool: BlockPool, blocks: readonly KVCacheBlock[]): void {
  for (const block of blocks) pool.cacheFullBlocks([block], [hashOf(block.blockId)], 0, 1);
}

/** The order in which the free blocks are handed out (takes them all, evicting, and frees them). */
function reuseOrder(pool: BlockPool): number[] {
  const blocks = pool.getNewBlocks(pool.numFreeBlocks);
  const order = ids(blocks);
  pool.freeBlocks(blocks.toReversed());
  return order;
}

describe("FreeKVCacheBlockQueue", () => {
  test("pops from the head, appends at the tail, prepends at the head", () => {
    const blocks = [0, 1, 2, 3].map((id) => new KVCacheBlock(id));
    const queue = new FreeKVCacheBlockQueue(blocks.slice(0, 3));
    expect(ids(queue.toArray())).toEqual([0, 1, 2]);
    queue.append(blocks[3]!);
    expect(queue.popLeft().blockId).toBe(0);
    queue.prepend(blocks[0]!);
    expect(ids(queue.toArray())).toEqual([0, 1, 2, 3]);
    expect(queue.length).toBe(4);
  });

  test("removes a block from the middle and unlinks it", () => {
    const blocks = [0, 1, 2].map((id) => new KVCacheBlock(id));
    const queue = new FreeKVCacheBlockQueue(blocks);
    queue.remove(blocks[1]!);
    expect(ids(queue.toArray())).toEqual([0, 2]);
    expect(queue.has(blocks[1]!)).toBe(false);
    expect(blocks[1]!.prevFree).toBeNull();
    expect(blocks[1]!.nextFree).toBeNull();
  });

  test("refuses to pop from an empty queue, queue a block twice or remove an absent one", () => {
    const block = new KVCacheBlock(0);
    const queue = new FreeKVCacheBlockQueue([block]);
    expect(() => queue.append(block)).toThrow("already in the free queue");
    queue.popLeft();
    expect(() => queue.popLeft()).toThrow("no free block");
    expect(() => queue.remove(block)).toThrow("not in the free queue");
  });
});

describe("BlockPool", () => {
  test("starts with every block free, handed out in id order with refCount 1", () => {
    const pool = new BlockPool(4, true);
    expect(pool.numFreeBlocks).toBe(4);
    expect(pool.usage).toBe(0);
    const blocks = pool.getNewBlocks(3);
    expect(ids(blocks)).toEqual([0, 1, 2]);
    expect(blocks.map((block) => block.refCount)).toEqual([1, 1, 1]);
    expect(pool.usage).toBe(0.75);
    pool.checkInvariants();
  });

  test("rejects a request for more blocks than are free, taking none", () => {
    const pool = new BlockPool(2, true);
    expect(() => pool.getNewBlocks(3)).toThrow("3 blocks requested but only 2 free");
    expect(pool.numFreeBlocks).toBe(2);
  });

  test("rejects an empty or fractional pool", () => {
    expect(() => new BlockPool(0, true)).toThrow(RangeError);
    expect(() => new BlockPool(2.5, true)).toThrow(RangeError);
  });

  test("a block returns to the free queue only when its last reference is dropped", () => {
    const pool = new BlockPool(2, false);
    const [block] = pool.getNewBlocks(1);
    pool.touch([block!]);
    pool.freeBlocks([block!]);
    expect(block!.refCount).toBe(1);
    expect(pool.numFreeBlocks).toBe(1);
    pool.freeBlocks([block!]);
    expect(pool.numFreeBlocks).toBe(2);
    expect(() => pool.freeBlocks([block!])).toThrow("freed with refCount 0");
  });

  test("freed cached blocks go to the tail in the order given, unhashed ones to the head", () => {
    const pool = new BlockPool(6, true);
    const blocks = pool.getNewBlocks(6);
    cacheEach(pool, blocks.slice(0, 4));
    pool.freeBlocks([blocks[3]!, blocks[1]!, blocks[4]!, blocks[0]!, blocks[5]!, blocks[2]!]);
    expect(reuseOrder(pool)).toEqual([5, 4, 3, 1, 0, 2]);
  });

  test("handing out a cached free block evicts its hash, in LRU order", () => {
    const pool = new BlockPool(3, true);
    const blocks = pool.getNewBlocks(3);
    cacheEach(pool, blocks);
    pool.freeBlocks([blocks[2]!, blocks[0]!, blocks[1]!]);
    expect(pool.numCachedFreeBlocks).toBe(3);
    const [evicted] = pool.getNewBlocks(1);
    expect(evicted!.blockId).toBe(2);
    expect(evicted!.blockHash).toBeNull();
    expect(pool.getCachedBlock(hashOf(2))).toBeNull();
    expect(pool.getCachedBlock(hashOf(0))).toBe(blocks[0]!);
    expect(pool.numCachedFreeBlocks).toBe(2);
    pool.checkInvariants();
  });

  test("touching a cached free block takes it out of the middle of the free queue", () => {
    const pool = new BlockPool(4, true);
    const blocks = pool.getNewBlocks(4);
    cacheEach(pool, blocks);
    pool.freeBlocks(blocks);
    pool.touch([blocks[2]!]);
    expect(blocks[2]!.refCount).toBe(1);
    expect(blocks[2]!.blockHash).toBe(hashOf(2));
    expect(pool.numFreeBlocks).toBe(3);
    expect(pool.numCachedFreeBlocks).toBe(3);
    pool.checkInvariants();
    expect(reuseOrder(pool)).toEqual([0, 1, 3]);
  });

  test("caches only blocks from numCachedBlocks to numFullBlocks, one block per hash", () => {
    const pool = new BlockPool(5, true);
    const blocks = pool.getNewBlocks(5);
    const hashes = [1, 2, 3, 4].map(hashOf);
    pool.cacheFullBlocks(blocks, hashes, 1, 3);
    const cachedHashes = blocks.map((block) => block.blockHash);
    expect(cachedHashes).toEqual([null, hashes[1]!, hashes[2]!, null, null]);
    // Block 4 holds the same content as block 1: block 1 stays the cached copy.
    pool.cacheFullBlocks([blocks[4]!], [hashes[1]!], 0, 1);
    expect(blocks[4]!.blockHash).toBeNull();
    expect(pool.getCachedBlock(hashes[1]!)).toBe(blocks[1]!);
    expect(() => pool.cacheFullBlocks(blocks, hashes, 0, 5)).toThrow("cannot cache 5 full blocks");
    pool.checkInvariants();
  });

  test("with prefix caching off nothing is cached", () => {
    const pool = new BlockPool(2, false);
    const blocks = pool.getNewBlocks(2);
    pool.cacheFullBlocks(blocks, [hashOf(0), hashOf(1)], 0, 2);
    expect(blocks.every((block) => block.blockHash === null)).toBe(true);
    expect(pool.getCachedBlock(hashOf(0))).toBeNull();
  });

  test("resetPrefixCache refuses while a block is in use, then forgets every hash", () => {
    const pool = new BlockPool(3, true);
    const blocks = pool.getNewBlocks(3);
    cacheEach(pool, blocks);
    pool.freeBlocks(blocks.slice(1));
    expect(pool.resetPrefixCache()).toBe(false);
    expect(pool.getCachedBlock(hashOf(1))).toBe(blocks[1]!);
    pool.freeBlocks(blocks.slice(0, 1));
    expect(pool.resetPrefixCache()).toBe(true);
    expect(blocks.every((block) => block.blockHash === null)).toBe(true);
    expect(pool.getCachedBlock(hashOf(0))).toBeNull();
    expect(pool.numCachedFreeBlocks).toBe(0);
    pool.checkInvariants();
  });

  test("counts prefix-cache queries and hits in tokens", () => {
    const pool = new BlockPool(1, true);
    pool.recordPrefixCacheLookup(40, 32);
    pool.recordPrefixCacheLookup(10, 0);
    expect(pool.prefixCacheStats).toEqual({ queries: 50, hits: 32 });
  });

  describe("checkInvariants reports", () => {
    test("a free-queue block with a reference", () => {
      const pool = new BlockPool(2, true);
      pool.blocks[1]!.refCount = 1;
      expect(() => pool.checkInvariants()).toThrow("block 1 is in the free queue with refCount 1");
    });

    test("a block with no reference outside the free queue", () => {
      const pool = new BlockPool(2, true);
      const [block] = pool.getNewBlocks(1);
      block!.refCount = 0;
      expect(() => pool.checkInvariants()).toThrow("block 0 has refCount 0 but is not in the free queue");
    });

    test("a hashed block missing from the hash map", () => {
      const pool = new BlockPool(2, true);
      pool.blocks[0]!.blockHash = hashOf(7);
      expect(() => pool.checkInvariants()).toThrow("block 0 has a hash that the prefix cache does not map");
    });

    test("a hash map entry whose block holds another hash", () => {
      const pool = new BlockPool(2, true);
      const blocks = pool.getNewBlocks(1);
      cacheEach(pool, blocks);
      blocks[0]!.blockHash = null;
      expect(() => pool.checkInvariants()).toThrow("maps a hash to block 0, which holds another hash");
    });
  });
});
