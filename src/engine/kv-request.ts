// What the KV-cache manager needs to know of a request; the scheduler's Request implements it.

import type { BlockHash } from "./block-hash.ts";

export interface KVRequest {
  readonly requestId: string;
  /** Prompt then output token ids so far. */
  readonly allTokenIds: readonly number[];
  readonly numPromptTokens: number;
  /** Tokens whose KV is computed (or scheduled to be, this step). */
  readonly numComputedTokens: number;
  /**
   * Hashes of the request's full blocks, in order. The KV-cache manager extends this array as
   * blocks fill up; the request only has to own it, starting empty, and keep it across
   * preemption (hashes depend on tokens only).
   */
  readonly blockHashes: BlockHash[];
  /** Must match, as well as the tokens, for blocks to be shared (LoRA adapter, cache salt). */
  readonly extraKey?: string;
}
