// Prefix-caching hashes: the hash of a full block stands for its token ids and, through its
// parent's hash, for every token before them, so equal hashes mean equal KV contents.

/**
 * A 128-bit block hash: two 64-bit hashes built into Bun (wyhash and XXH3, unrelated designs)
 * over the same bytes, side by side. With n blocks ever hashed an accidental collision has
 * probability about n^2 / 2^129 (below 1e-26 for 1e12 blocks), so a hash match is taken as a
 * content match without comparing tokens. Neither function is cryptographic: a user who can
 * choose prompts could in principle search for collisions. The root seed is random per process
 * (as vLLM's NONE_HASH), which keeps hashes from being computed ahead of time, but a multi-tenant
 * deployment that needs a guarantee should switch to a keyed cryptographic hash here.
 */
export type BlockHash = bigint;

const MASK_64 = (1n << 64n) - 1n;
const TOKEN_BYTES = 4;
// Parent hash (16 bytes) then the number of tokens (4 bytes), ahead of the token ids.
const HEADER_BYTES = 20;
const textEncoder = new TextEncoder();

/** The parent of a request's first block: random, so hashes differ from one process to the next. */
const ROOT_HASH: BlockHash = randomHash();

function randomHash(): BlockHash {
  const words = crypto.getRandomValues(new BigUint64Array(2));
  return (words[0]! << 64n) | words[1]!;
}

function hashTokenRange(
  parent: BlockHash | null,
  tokenIds: ArrayLike<number>,
  start: number,
  end: number,
  extraKey: string | undefined,
): BlockHash {
  const extra = extraKey ? textEncoder.encode(extraKey) : undefined;
  const numTokens = end - start;
  const bytes = new Uint8Array(HEADER_BYTES + TOKEN_BYTES * numTokens + (extra?.length ?? 0));
  const view = new DataView(bytes.buffer);
  const parentHash = parent ?? ROOT_HASH;
  view.setBigUint64(0, parentHash >> 64n, true);
  view.setBigUint64(8, parentHash & MASK_64, true);
  // The token count makes the encoding unambiguous: the extra key is whatever follows the tokens.
  view.setUint32(16, numTokens, true);
  for (let i = 0; i < numTokens; i++) {
    view.setInt32(HEADER_BYTES + TOKEN_BYTES * i, tokenIds[start + i]!, true);
  }
  if (extra) bytes.set(extra, HEADER_BYTES + TOKEN_BYTES * numTokens);
  return (Bun.hash.wyhash(bytes) << 64n) | Bun.hash.xxHash3(bytes);
}

/**
 * The hash of one full block: its parent's hash (null for a request's first block), its token ids
 * (32-bit integers) and an optional extra key that must also match for blocks to be shared
 * (e.g. a LoRA adapter name or a cache salt; "" is the same as no key).
 */
export function hashBlockTokens(parent: BlockHash | null, tokenIds: ArrayLike<number>, extraKey?: string): BlockHash {
  return hashTokenRange(parent, tokenIds, 0, tokenIds.length, extraKey);
}

/**
 * Extends `existing`, the hashes of a request's first full blocks, with the hashes of the blocks
 * of `tokenIds` that have become full since, and returns it. Hashing is incremental: each call
 * hashes only the new full blocks, so it can run every time tokens are appended.
 */
export function requestBlockHashes(
  tokenIds: readonly number[],
  blockSize: number,
  existing: BlockHash[] = [],
  extraKey?: string,
): BlockHash[] {
  const numFullBlocks = Math.floor(tokenIds.length / blockSize);
  for (let i = existing.length; i < numFullBlocks; i++) {
    const parent = i === 0 ? null : existing[i - 1]!;
    existing.push(hashTokenRange(parent, tokenIds, i * blockSize, (i + 1) * blockSize, extraKey));
  }
  return existing;
}
