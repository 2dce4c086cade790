// One timed vt_paged_attention case on a synthetic paged KV cache: every sequence with the same
// number of cached tokens and query tokens, its blocks at shuffled physical places (as a block
// allocator that has run for a while leaves them), the cache filled with random values. Decode
// (one query token per sequence) is bound by reading the KV cache; a whole-prompt prefill chunk
// by the two matrix products per head.
import { type Address, offsetAddress } from "../../backend/address.ts";
import type { Backend } from "../../backend/backend.ts";
import { type DType, dtypeBytes } from "../../backend/dtype.ts";
import { RequestGenerator } from "../../engine/random.ts";
import { bestSeconds, type TimingOptions } from "./timing.ts";

export interface PagedAttentionCase {
  numSeqs: number;
  /** Query tokens per sequence: 1 for decode, the chunk length for prefill. */
  queryLen: number;
  /** Cached tokens per sequence, the query's own included (>= queryLen). */
  seqLen: number;
  numQHeads: number;
  numKvHeads: number;
  headDim: number;
  blockSize: number;
  actDtype: DType;
  cacheDtype: DType;
}

export interface PagedAttentionPlan {
  /** K and V bytes one copy of the cache holds for the sequences' tokens (what decode reads). */
  kvBytes: number;
  /** Copies of the cache the timing rotates through, so that a small cache comes from DRAM. */
  copies: number;
  /** Device bytes the case allocates: the cache copies, q, out and the block tables. */
  deviceBytes: number;
}

function blocksPerSeq(c: PagedAttentionCase): number {
  return Math.ceil(c.seqLen / c.blockSize);
}

/**
 * How many cache copies fill `coldBytes` (at least one) within `budgetBytes`, and what that
 * allocates; null when not even one copy fits.
 */
export function planPagedAttention(
  c: PagedAttentionCase,
  coldBytes: number,
  budgetBytes: number,
): PagedAttentionPlan | null {
  const cacheBytes = dtypeBytes(c.cacheDtype);
  const kvBytes = 2 * c.numSeqs * c.seqLen * c.numKvHeads * c.headDim * cacheBytes;
  // A copy is whole blocks: the last block of a sequence may be partly empty.
  const copyBytes = 2 * c.numSeqs * blocksPerSeq(c) * c.blockSize * c.numKvHeads * c.headDim * cacheBytes;
  const tokens = c.numSeqs * c.queryLen;
  const fixedBytes = 2 * tokens * c.numQHeads * c.headDim * dtypeBytes(c.actDtype) + 4 * (2 * c.numSeqs + 1);
  const tableBytes = 4 * c.numSeqs * blocksPerSeq(c);
  const fitting = Math.floor((budgetBytes - fixedBytes) / (copyBytes + tableBytes));
  if (fitting < 1) return null;
  const copies = Math.max(1, Math.min(fitting, Math.ceil(coldBytes / copyBytes)));
  return { kvBytes, copies, deviceBytes: fixedBytes + copies * (copyBytes + tableBytes) };
}

/** A random permutation of 0..count-1 (Fisher-Yates on a seeded generator). */
function shuffledBlocks(count: number, seed: number): Int32Array {
  const random = new RequestGenerator(seed);
  const blocks = Int32Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random.nextFloat() * (i + 1));
    [blocks[i], blocks[j]] = [blocks[j]!, blocks[i]!];
  }
  return blocks;
}

/** Seconds of one vt_paged_attention call over the case, rotating through `copies` caches. */
export function timePagedAttention(
  backend: Backend,
  options: TimingOptions,
  c: PagedAttentionCase,
  copies: number,
): number {
  const perSeq = blocksPerSeq(c);
  const numBlocks = c.numSeqs * perSeq * copies;
  const planeCount = numBlocks * c.blockSize * c.numKvHeads * c.headDim;
  const numTokens = c.numSeqs * c.queryLen;
  const rowCount = numTokens * c.numQHeads * c.headDim;
  // Copy i's block table is the i-th slice of one shuffle of all the physical blocks.
  const blockTables = shuffledBlocks(numBlocks, 1);
  const seqLens = new Int32Array(c.numSeqs).fill(c.seqLen);
  const queryStartLoc = Int32Array.from({ length: c.numSeqs + 1 }, (_, i) => i * c.queryLen);
  const addresses: Address[] = [];
  const alloc = (bytes: number) => {
    const address = backend.malloc(bytes);
    addresses.push(address);
    return address;
  };
  try {
    const kCache = alloc(planeCount * dtypeBytes(c.cacheDtype));
    const vCache = alloc(planeCount * dtypeBytes(c.cacheDtype));
    const q = alloc(rowCount * dtypeBytes(c.actDtype));
    const out = alloc(rowCount * dtypeBytes(c.actDtype));
    const tables = alloc(blockTables.byteLength);
    const lens = alloc(seqLens.byteLength);
    const starts = alloc(queryStartLoc.byteLength);
    backend.fillUniform(kCache, c.cacheDtype, planeCount, 1, 1);
    backend.fillUniform(vCache, c.cacheDtype, planeCount, 2, 1);
    backend.fillUniform(q, c.actDtype, rowCount, 3, 1);
    backend.upload(tables, blockTables);
    backend.upload(lens, seqLens);
    backend.upload(starts, queryStartLoc);
    const tableBytes = 4 * c.numSeqs * perSeq;
    return bestSeconds(
      backend,
      options,
      (call) =>
        backend.pagedAttention({
          out,
          q,
          kCache,
          vCache,
          blockTables: offsetAddress(tables, (call % copies) * tableBytes),
          seqLens: lens,
          queryStartLoc: starts,
          numSeqs: c.numSeqs,
          numTokens,
          maxQueryLen: c.queryLen,
          maxSeqLen: c.seqLen,
          maxBlocksPerSeq: perSeq,
          numQHeads: c.numQHeads,
          numKvHeads: c.numKvHeads,
          headDim: c.headDim,
          qRowStride: c.numQHeads * c.headDim,
          blockSize: c.blockSize,
          scale: 1 / Math.sqrt(c.headDim),
          slidingWindow: 0,
          actDtype: c.actDtype,
          cacheDtype: c.cacheDtype,
        }),
      copies,
    );
  } finally {
    addresses.forEach((address) => {
      backend.free(address);
    });
  }
}
