// A KV-cache block (a fixed number of token slots on the device, known here only by id) and the
// free queue that orders unused blocks for reuse and eviction.

import type { BlockHash } from "./block-hash.ts";

export class KVCacheBlock {
  /** Number of live requests whose block table holds this block. */
  refCount = 0;
  /** Set while the block is full and registered in the prefix cache; kept after it is freed. */
  blockHash: BlockHash | null = null;
  // Intrusive links of FreeKVCacheBlockQueue: both non-null exactly while the block is queued.
  prevFree: KVCacheBlock | null = null;
  nextFree: KVCacheBlock | null = null;

  constructor(readonly blockId: number) {}
}

/**
 * Free blocks in eviction order: the head is reused first. A doubly linked list threaded through
 * the blocks themselves, so that a cached free block taken back by a prefix-cache hit leaves the
 * middle of the queue in O(1) without allocating (as vLLM's FreeKVCacheBlockQueue).
 */
export class FreeKVCacheBlockQueue {
  // Sentinels (id -1) keep insertion and removal free of end-of-list branches.
  private readonly head = new KVCacheBlock(-1);
  private readonly tail = new KVCacheBlock(-1);
  private count = 0;

  constructor(blocks: readonly KVCacheBlock[]) {
    this.head.nextFree = this.tail;
    this.tail.prevFree = this.head;
    for (const block of blocks) this.append(block);
  }

  get length(): number {
    return this.count;
  }

  has(block: KVCacheBlock): boolean {
    return block.prevFree !== null;
  }

  /** Removes and returns the block at the head (the next to be reused). */
  popLeft(): KVCacheBlock {
    const block = this.head.nextFree!;
    if (block === this.tail) throw new Error("FreeKVCacheBlockQueue: no free block to pop");
    this.remove(block);
    return block;
  }

  remove(block: KVCacheBlock): void {
    const prev = block.prevFree;
    const next = block.nextFree;
    if (prev === null || next === null) {
      throw new Error(`FreeKVCacheBlockQueue: block ${block.blockId} is not in the free queue`);
    }
    prev.nextFree = next;
    next.prevFree = prev;
    block.prevFree = null;
    block.nextFree = null;
    this.count--;
  }

  /** Queues a block last: the last to be reused. */
  append(block: KVCacheBlock): void {
    this.insertBetween(block, this.tail.prevFree!, this.tail);
  }

  /** Queues a block first: the next to be reused. */
  prepend(block: KVCacheBlock): void {
    this.insertBetween(block, this.head, this.head.nextFree!);
  }

  /**
   * The queued blocks from head to tail, for checks and tests (O(n)). Throws if the links are
   * broken, rather than looping forever on a corrupted list.
   */
  toArray(): KVCacheBlock[] {
    const blocks: KVCacheBlock[] = [];
    let prev = this.head;
    for (let block = this.head.nextFree; block !== this.tail; block = block.nextFree) {
      if (block === null || block.prevFree !== prev || blocks.length >= this.count) {
        throw new Error(`FreeKVCacheBlockQueue: broken links after ${blocks.length} blocks`);
      }
      blocks.push(block);
      prev = block;
    }
    if (blocks.length !== this.count || this.tail.prevFree !== prev) {
      throw new Error(`FreeKVCacheBlockQueue: length ${this.count} but ${blocks.length} linked`);
    }
    return blocks;
  }

  private insertBetween(block: KVCacheBlock, prev: KVCacheBlock, next: KVCacheBlock): void {
    if (block.prevFree !== null) {
      throw new Error(`FreeKVCacheBlockQueue: block ${block.blockId} is already in the free queue`);
    }
    block.prevFree = prev;
    block.nextFree = next;
    prev.nextFree = block;
    next.prevFree = block;
    this.count++;
  }
}
