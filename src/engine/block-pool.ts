// The block pool: every KV-cache block of the engine, the free queue in eviction order, ref
// counts, and the prefix cache (block hash → the block holding that content).

import type { BlockHash } from "./block-hash.ts";
import { FreeKVCacheBlockQueue, KVCacheBlock } from "./kv-cache-block.ts";

/** Prefix-cache lookups since the pool was created, in tokens. */
export interface PrefixCacheStats {
  queries: number;
  hits: number;
}

export class BlockPool {
  readonly blocks: readonly KVCacheBlock[];
  private readonly freeBlockQueue: FreeKVCacheBlockQueue;
  private readonly cachedBlocks = new Map<BlockHash, KVCacheBlock>();
  private numCachedFreeBlocksCount = 0;
  private queriedTokens = 0;
  private hitTokens = 0;

  constructor(
    readonly numBlocks: number,
    readonly enablePrefixCaching: boolean,
  ) {
    if (!Number.isInteger(numBlocks) || numBlocks < 1) {
      throw new RangeError(`BlockPool: numBlocks must be a positive integer, got ${numBlocks}`);
    }
    this.blocks = Array.from({ length: numBlocks }, (_, blockId) => new KVCacheBlock(blockId));
    this.freeBlockQueue = new FreeKVCacheBlockQueue(this.blocks);
  }

  /** Blocks no request holds, cached or not: all of them can be handed out. */
  get numFreeBlocks(): number {
    return this.freeBlockQueue.length;
  }

  /** Free blocks that still hold a cached prefix (evicted only when needed). */
  get numCachedFreeBlocks(): number {
    return this.numCachedFreeBlocksCount;
  }

  /** Fraction of the blocks held by requests, in [0, 1]. */
  get usage(): number {
    return 1 - this.freeBlockQueue.length / this.numBlocks;
  }

  get prefixCacheStats(): PrefixCacheStats {
    return { queries: this.queriedTokens, hits: this.hitTokens };
  }

  recordPrefixCacheLookup(queriedTokens: number, hitTokens: number): void {
    this.queriedTokens += queriedTokens;
    this.hitTokens += hitTokens;
  }

  /**
   * Takes `n` blocks from the head of the free queue, each with refCount 1. A taken block that
   * still held a cached prefix loses it: this is eviction, in the queue's LRU order.
   */
  getNewBlocks(n: number): KVCacheBlock[] {
    if (n > this.freeBlockQueue.length) {
      const numFree = this.freeBlockQueue.length;
      throw new Error(`BlockPool: ${n} blocks requested but only ${numFree} free`);
    }
    const blocks: KVCacheBlock[] = [];
    for (let i = 0; i < n; i++) {
      const block = this.freeBlockQueue.popLeft();
      if (block.blockHash !== null) {
        this.numCachedFreeBlocksCount--;
        this.cachedBlocks.delete(block.blockHash);
        block.blockHash = null;
      }
      block.refCount = 1;
      blocks.push(block);
    }
    return blocks;
  }

  getCachedBlock(blockHash: BlockHash): KVCacheBlock | null {
    return this.cachedBlocks.get(blockHash) ?? null;
  }

  /** Takes a reference on each block (prefix-cache hits), pulling free ones out of the queue. */
  touch(blocks: readonly KVCacheBlock[]): void {
    for (const block of blocks) {
      if (block.refCount === 0) {
        this.freeBlockQueue.remove(block);
        if (block.blockHash !== null) this.numCachedFreeBlocksCount--;
      }
      block.refCount++;
    }
  }

  /**
   * Drops a reference on each block, in the order given (eviction order among the blocks that
   * become free). A block that becomes free keeps its hash and goes to the tail, to be evicted
   * last; one without a hash holds nothing worth keeping and goes to the head, to be reused
   * before any cached block is evicted.
   */
  freeBlocks(blocks: readonly KVCacheBlock[]): void {
    for (const block of blocks) {
      if (block.refCount <= 0) {
        throw new Error(`BlockPool: block ${block.blockId} freed with refCount ${block.refCount}`);
      }
      if (--block.refCount > 0) continue;
      if (block.blockHash === null) {
        this.freeBlockQueue.prepend(block);
      } else {
        this.freeBlockQueue.append(block);
        this.numCachedFreeBlocksCount++;
      }
    }
  }

  /**
   * Registers the blocks `numCachedBlocks..numFullBlocks-1` of a block table, newly full, under
   * their hashes. Blocks that already carry a hash (prefix-cache hits) are left alone. A block
   * whose content is already cached in another block (two requests computed the same prefix at
   * the same time) stays unhashed: one copy is enough, and one hash maps to one block.
   */
  cacheFullBlocks(
    blocks: readonly KVCacheBlock[],
    blockHashes: readonly BlockHash[],
    numCachedBlocks: number,
    numFullBlocks: number,
  ): void {
    if (!this.enablePrefixCaching) return;
    if (numFullBlocks > blocks.length || numFullBlocks > blockHashes.length) {
      throw new Error(
        `BlockPool: cannot cache ${numFullBlocks} full blocks with ${blocks.length} blocks and ` +
          `${blockHashes.length} block hashes`,
      );
    }
    for (let i = numCachedBlocks; i < numFullBlocks; i++) {
      const block = blocks[i]!;
      const blockHash = blockHashes[i]!;
      if (block.blockHash !== null || this.cachedBlocks.has(blockHash)) continue;
      block.blockHash = blockHash;
      this.cachedBlocks.set(blockHash, block);
    }
  }

  /**
   * Forgets every cached prefix (e.g. after new weights are loaded). Only possible while no request
   * holds a block, since a running request's blocks stay valid for it; returns false otherwise.
   */
  resetPrefixCache(): boolean {
    if (this.freeBlockQueue.length !== this.numBlocks) return false;
    for (const block of this.cachedBlocks.values()) block.blockHash = null;
    this.cachedBlocks.clear();
    this.numCachedFreeBlocksCount = 0;
    return true;
  }

  /** Throws with the first inconsistency found between ref counts, free queue and hash map. */
  checkInvariants(): void {
    const fail = invariantViolated;
    const queued = this.freeBlockQueue.toArray();
    const inQueue = new Set<KVCacheBlock>();
    let cachedFree = 0;
    for (const block of queued) {
      if (inQueue.has(block)) fail(`block ${block.blockId} is twice in the free queue`);
      inQueue.add(block);
      if (block.refCount !== 0) {
        fail(`block ${block.blockId} is in the free queue with refCount ${block.refCount}`);
      }
      if (block.blockHash !== null) cachedFree++;
    }
    let numUsed = 0;
    this.blocks.forEach((block, index) => {
      if (block.blockId !== index) fail(`block at index ${index} has id ${block.blockId}`);
      if (block.refCount < 0) fail(`block ${block.blockId} has refCount ${block.refCount}`);
      if (block.refCount > 0) numUsed++;
      if (block.refCount === 0 && !inQueue.has(block)) {
        fail(`block ${block.blockId} has refCount 0 but is not in the free queue (leaked)`);
      }
      if (block.blockHash !== null && this.cachedBlocks.get(block.blockHash) !== block) {
        fail(`block ${block.blockId} has a hash that the prefix cache does not map to it`);
      }
    });
    if (numUsed + queued.length !== this.numBlocks) {
      fail(`${queued.length} free + ${numUsed} used blocks != ${this.numBlocks} total`);
    }
    for (const [blockHash, block] of this.cachedBlocks) {
      if (block.blockHash !== blockHash) {
        const { blockId } = block;
        fail(`the prefix cache maps a hash to block ${blockId}, which holds another hash`);
      }
    }
    if (!this.enablePrefixCaching && this.cachedBlocks.size > 0) {
      fail(`prefix caching is off but ${this.cachedBlocks.size} blocks are cached`);
    }
    if (cachedFree !== this.numCachedFreeBlocksCount) {
      const counted = this.numCachedFreeBlocksCount;
      fail(`${cachedFree} cached free blocks, but the counter says ${counted}`);
    }
  }
}

/** Throws the error every KV-cache invariant check reports. */
export function invariantViolated(message: string): never {
  throw new Error(`KV-cache invariant violated: ${message}`);
}
