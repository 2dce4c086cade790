// The KV-cache manager: each request's block table over the block pool. Allocates slots on demand
// for the tokens about to be computed, looks up cached prefixes, frees, and checks its invariants.

import { type BlockHash, requestBlockHashes } from "./block-hash.ts";
import { BlockPool, invariantViolated, type PrefixCacheStats } from "./block-pool.ts";
import type { KVCacheBlock } from "./kv-cache-block.ts";
import type { KVRequest } from "./kv-request.ts";

export interface KVCacheManagerOptions {
  numBlocks: number;
  /** Tokens per block. */
  blockSize: number;
  enablePrefixCaching: boolean;
}

/** A cached prefix of a request: full blocks that need no computation. */
export interface ComputedBlocks {
  blocks: KVCacheBlock[];
  /** blocks.length * blockSize. */
  numComputedTokens: number;
}

export interface KVCacheStats {
  totalBlocks: number;
  /** Blocks held by at least one request. */
  usedBlocks: number;
  freeBlocks: number;
  /** Free blocks that still hold a cached prefix (counted in freeBlocks). */
  cachedFreeBlocks: number;
  /** Slots of used blocks holding a token; a slot shared by several requests counts once. */
  tokensStored: number;
  /** usedBlocks * blockSize. */
  allocatedSlots: number;
  /** Allocated slots holding no token / allocated slots (0 when nothing is allocated). */
  wasteRatio: number;
}

interface BlockTable {
  blocks: KVCacheBlock[];
  /** Leading blocks already offered to the prefix cache. */
  numCachedBlocks: number;
  /** Tokens the blocks were allocated for: computed, or being computed this step. */
  numTokens: number;
  /** Of those, how many were not sampled yet at allocation (async scheduling). */
  numUnknownTokens: number;
}

/**
 * Parallel sampling (n > 1) needs nothing special: the children of a request share its prompt, so
 * the first child to be scheduled registers the prompt's full blocks at allocation and the others
 * find them with getComputedBlocks, even later in the same step (the runner writes a step's K/V
 * before attention reads it, layer by layer). As in vLLM, this sharing rides on prefix caching.
 */
export class KVCacheManager {
  readonly numBlocks: number;
  readonly blockSize: number;
  readonly enablePrefixCaching: boolean;
  readonly blockPool: BlockPool;
  private readonly blockTables = new Map<string, BlockTable>();

  constructor({ numBlocks, blockSize, enablePrefixCaching }: KVCacheManagerOptions) {
    if (!Number.isInteger(blockSize) || blockSize < 1) {
      throw new RangeError(`KVCacheManager: blockSize must be a positive integer, got ${blockSize}`);
    }
    this.numBlocks = numBlocks;
    this.blockSize = blockSize;
    this.enablePrefixCaching = enablePrefixCaching;
    this.blockPool = new BlockPool(numBlocks, enablePrefixCaching);
  }

  get numFreeBlocks(): number {
    return this.blockPool.numFreeBlocks;
  }

  /** Fraction of the blocks held by requests, in [0, 1]. */
  get usage(): number {
    return this.blockPool.usage;
  }

  get prefixCacheStats(): PrefixCacheStats {
    return this.blockPool.prefixCacheStats;
  }

  resetPrefixCache(): boolean {
    return this.blockPool.resetPrefixCache();
  }

  /**
   * The longest run of cached full blocks at the start of a request's tokens (the prompt, plus
   * the outputs of a preempted request coming back). Never all of its tokens: the last one is
   * always computed, since the step must produce its logits. Call it for a request holding no
   * blocks, and pass the result to allocateSlots before any other allocation, which could evict
   * the hit blocks that are free.
   */
  getComputedBlocks(request: KVRequest): ComputedBlocks {
    if (!this.enablePrefixCaching) return { blocks: [], numComputedTokens: 0 };
    const blockHashes = this.updateBlockHashes(request);
    const numTokens = request.allTokenIds.length;
    const maxHitBlocks = Math.floor((numTokens - 1) / this.blockSize);
    const blocks: KVCacheBlock[] = [];
    for (let i = 0; i < maxHitBlocks; i++) {
      const block = this.blockPool.getCachedBlock(blockHashes[i]!);
      if (block === null) break;
      blocks.push(block);
    }
    const numComputedTokens = blocks.length * this.blockSize;
    this.blockPool.recordPrefixCacheLookup(numTokens, numComputedTokens);
    return { blocks, numComputedTokens };
  }

  /**
   * Makes the request's block table hold request.numComputedTokens + (prefix-hit tokens) +
   * numNewTokens tokens: takes the prefix-hit blocks first, then exactly as many new blocks as
   * still needed. Returns the new blocks, or null, having changed nothing, when there are not
   * enough free blocks (cached free blocks count as free: they are evicted). With prefix caching
   * on, the blocks that become full are registered in the prefix cache. As in vLLM, prefix hits
   * are not yet in request.numComputedTokens (0 for a waiting request): the scheduler adds them,
   * with the new tokens, once the allocation has succeeded. numUnknownTokens of the new tokens
   * are not in request.allTokenIds yet (async scheduling: sampled by a step still running): they
   * get slots, and their block is registered once their ids are known.
   */
  allocateSlots(
    request: KVRequest,
    numNewTokens: number,
    newComputedBlocks: readonly KVCacheBlock[] = [],
    numUnknownTokens = 0,
  ): KVCacheBlock[] | null {
    if (!Number.isInteger(numNewTokens) || numNewTokens < 0) {
      throw new RangeError(`allocateSlots: numNewTokens must be a non-negative integer, got ${numNewTokens}`);
    }
    const table = this.blockTables.get(request.requestId);
    const numHeldBlocks = table?.blocks.length ?? 0;
    if (newComputedBlocks.length > 0 && (numHeldBlocks > 0 || request.numComputedTokens > 0)) {
      throw new Error(
        `allocateSlots: prefix-cache hits given for request ${request.requestId}, which already ` +
          `has ${numHeldBlocks} blocks and ${request.numComputedTokens} computed tokens`,
      );
    }
    const numTokens = request.numComputedTokens + newComputedBlocks.length * this.blockSize + numNewTokens;
    if (numTokens > request.allTokenIds.length + numUnknownTokens) {
      throw new RangeError(
        `allocateSlots: request ${request.requestId} would hold ${numTokens} tokens but has only ` +
          `${request.allTokenIds.length}` +
          (numUnknownTokens > 0 ? ` and ${numUnknownTokens} not yet sampled` : ""),
      );
    }
    const numRequiredBlocks = Math.max(
      0,
      Math.ceil(numTokens / this.blockSize) - numHeldBlocks - newComputedBlocks.length,
    );
    // Free hit blocks leave the free queue when touched, so they cannot also serve as new blocks.
    const numFreeHits = newComputedBlocks.filter((block) => block.refCount === 0).length;
    if (numRequiredBlocks > this.blockPool.numFreeBlocks - numFreeHits) return null;

    this.blockPool.touch(newComputedBlocks);
    const blockTable = table ?? { blocks: [], numCachedBlocks: 0, numTokens: 0, numUnknownTokens: 0 };
    blockTable.blocks.push(...newComputedBlocks);
    blockTable.numCachedBlocks += newComputedBlocks.length;
    const newBlocks = this.blockPool.getNewBlocks(numRequiredBlocks);
    blockTable.blocks.push(...newBlocks);
    blockTable.numTokens = numTokens;
    blockTable.numUnknownTokens = numUnknownTokens;
    this.blockTables.set(request.requestId, blockTable);

    if (this.enablePrefixCaching) {
      const numFullBlocks = Math.floor(Math.min(numTokens, request.allTokenIds.length) / this.blockSize);
      if (numFullBlocks > blockTable.numCachedBlocks) {
        const blockHashes = this.updateBlockHashes(request);
        this.blockPool.cacheFullBlocks(blockTable.blocks, blockHashes, blockTable.numCachedBlocks, numFullBlocks);
        blockTable.numCachedBlocks = numFullBlocks;
      }
    }
    return newBlocks;
  }

  /**
   * Releases all blocks of a request (finished, aborted or preempted). Freed last block first, so
   * that among its cached blocks the end of the sequence is evicted before its start, which other
   * requests are likelier to share.
   */
  free(request: KVRequest): void {
    const table = this.blockTables.get(request.requestId);
    if (table === undefined) return;
    this.blockTables.delete(request.requestId);
    this.blockPool.freeBlocks(table.blocks.toReversed());
  }

  /** The request's block table: block ids in token order. */
  blockIds(requestId: string): number[] {
    return this.blockTables.get(requestId)?.blocks.map((block) => block.blockId) ?? [];
  }

  numBlocksOf(requestId: string): number {
    return this.blockTables.get(requestId)?.blocks.length ?? 0;
  }

  stats(): KVCacheStats {
    // Tokens held per block: the most any of its owners has in it (shared blocks are full).
    const tokensInBlock = new Map<KVCacheBlock, number>();
    for (const { blocks, numTokens } of this.blockTables.values()) {
      blocks.forEach((block, i) => {
        const held = Math.min(this.blockSize, Math.max(0, numTokens - i * this.blockSize));
        tokensInBlock.set(block, Math.max(held, tokensInBlock.get(block) ?? 0));
      });
    }
    let tokensStored = 0;
    for (const held of tokensInBlock.values()) tokensStored += held;
    const freeBlocks = this.blockPool.numFreeBlocks;
    const usedBlocks = this.numBlocks - freeBlocks;
    const allocatedSlots = usedBlocks * this.blockSize;
    return {
      totalBlocks: this.numBlocks,
      usedBlocks,
      freeBlocks,
      cachedFreeBlocks: this.blockPool.numCachedFreeBlocks,
      tokensStored,
      allocatedSlots,
      wasteRatio: allocatedSlots === 0 ? 0 : (allocatedSlots - tokensStored) / allocatedSlots,
    };
  }

  /**
   * Throws with a precise message unless the block tables of `liveRequests` (every request the
   * scheduler still knows, running or waiting) and the block pool agree: no block leaked or twice
   * in a table, each block's refCount equal to the number of tables holding it, tables sized to
   * their tokens, computed tokens backed by blocks, and cached blocks where their hash says.
   */
  checkInvariants(liveRequests: Iterable<KVRequest>): void {
    this.blockPool.checkInvariants();
    const live = new Map<string, KVRequest>();
    for (const request of liveRequests) {
      if (live.has(request.requestId)) {
        invariantViolated(`request ${request.requestId} is listed twice among live requests`);
      }
      live.set(request.requestId, request);
      const { requestId, numComputedTokens } = request;
      if (!this.blockTables.has(requestId) && numComputedTokens > 0) {
        invariantViolated(`request ${requestId} has ${numComputedTokens} computed tokens but no blocks`);
      }
    }
    const owners = new Map<KVCacheBlock, number>();
    for (const [requestId, table] of this.blockTables) {
      const request = live.get(requestId);
      if (request === undefined) {
        const blockIds = this.blockIds(requestId).join(", ");
        invariantViolated(`request ${requestId} is not live but holds blocks [${blockIds}]`);
      }
      this.checkBlockTable(request, table);
      for (const block of table.blocks) owners.set(block, (owners.get(block) ?? 0) + 1);
    }
    for (const block of this.blockPool.blocks) {
      const numOwners = owners.get(block) ?? 0;
      if (block.refCount !== numOwners) {
        invariantViolated(
          `block ${block.blockId} has refCount ${block.refCount} ` + `but ${numOwners} block tables hold it`,
        );
      }
    }
  }

  private checkBlockTable(request: KVRequest, table: BlockTable): void {
    const { requestId, numComputedTokens, allTokenIds } = request;
    const { blocks, numTokens, numCachedBlocks, numUnknownTokens } = table;
    const seen = new Set<KVCacheBlock>();
    for (const block of blocks) {
      if (seen.has(block)) {
        invariantViolated(`block ${block.blockId} is twice in the block table of ${requestId}`);
      }
      seen.add(block);
    }
    if (blocks.length !== Math.ceil(numTokens / this.blockSize)) {
      invariantViolated(
        `request ${requestId} holds ${blocks.length} blocks for ${numTokens} tokens ` +
          `(block size ${this.blockSize})`,
      );
    }
    if (numTokens > allTokenIds.length + numUnknownTokens) {
      invariantViolated(
        `request ${requestId} has slots for ${numTokens} tokens but ${allTokenIds.length} tokens` +
          ` and ${numUnknownTokens} being sampled`,
      );
    }
    if (numComputedTokens > numTokens) {
      invariantViolated(`request ${requestId} has ${numComputedTokens} computed tokens but slots for ${numTokens}`);
    }
    if (numCachedBlocks > blocks.length) {
      invariantViolated(`request ${requestId} has ${numCachedBlocks} cached blocks of ${blocks.length} blocks`);
    }
    blocks.forEach((block, i) => {
      if (block.blockHash === null) return;
      if ((i + 1) * this.blockSize > numTokens) {
        invariantViolated(`block ${block.blockId} of ${requestId} is hashed but not full`);
      }
      if (block.blockHash !== request.blockHashes[i]) {
        invariantViolated(`block ${block.blockId} at position ${i} of ${requestId} holds another prefix's hash`);
      }
    });
  }

  /** Brings the request's full-block hashes up to date with its tokens. */
  private updateBlockHashes(request: KVRequest): BlockHash[] {
    return requestBlockHashes(request.allTokenIds, this.blockSize, request.blockHashes, request.extraKey);
  }
}
