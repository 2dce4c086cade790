// The allowed-token masks of one step, packed for vt_apply_token_bitmask: one row of 32-token
// words per constrained request, and which sampled row each applies to.

export interface TokenBitmask {
  /** For each mask row, the index of the sampled row (of this step's logits) it applies to. */
  rowIndices: Int32Array;
  /** [rowIndices.length, wordsPerRow]: bit t % 32 of word t / 32 set = token t allowed. */
  words: Int32Array;
  wordsPerRow: number;
}

/** Words needed for a vocabulary of vocabSize tokens. */
export function bitmaskWords(vocabSize: number): number {
  return Math.ceil(vocabSize / 32);
}

/** A step's masks, possibly still being filled (by the grammar thread, while the forward pass runs). */
export type PendingBitmask = TokenBitmask | null | Promise<TokenBitmask | null>;
