// One row of a static batch (src/engine/static-scheduler.ts): its request, its max-length KV
// reservation, and what Hugging Face generate() computes for the row beyond the request's own
// tokens: the prompt padding before it, and the positions after it finished, until the batch ends.
import type { KVCacheBlock } from "./kv-cache-block.ts";
import type { Request } from "./request.ts";
import type { CachedRequestData, PaddingRow } from "./scheduler-output.ts";

export class BatchMember {
  /** The runner has been sent the member's block table. */
  sentToRunner = false;
  private numComputedPaddingTokens = 0;
  /** The next position computed after the request finished (its last token's, at first). */
  private nextThrowAwayPosition: number | null = null;
  /** What the row sampled last after it finished, fed back to it as its next token. */
  private lastThrowAwayTokenId = 0;
  /** Output tokens not reported yet: generate() returns a row only with its whole batch. */
  readonly unreportedTokenIds: number[] = [];

  constructor(
    readonly request: Request,
    /** ceil(maxModelLen / blockSize) blocks, held from the batch's start to its end. */
    readonly blocks: readonly KVCacheBlock[],
    /** The batch's longest prompt minus this one (0 when the batch is not padded). */
    readonly numPaddingTokens: number,
  ) {}

  get numUncomputedPaddingTokens(): number {
    return this.numPaddingTokens - this.numComputedPaddingTokens;
  }

  /** Its prompt or its padding is not fully computed yet. */
  get isPrefilling(): boolean {
    return this.request.numComputedTokens < this.request.numPromptTokens || this.numUncomputedPaddingTokens > 0;
  }

  /** Holds a step's new output tokens until the batch ends. */
  keep(tokenIds: readonly number[]): void {
    this.unreportedTokenIds.push(...tokenIds);
  }

  /** The next `numTokens` tokens of its padding, counted as computed. */
  takePadding(numTokens: number): PaddingRow {
    const row = { requestId: this.request.requestId, numComputedTokens: this.numComputedPaddingTokens, numTokens };
    this.numComputedPaddingTokens += numTokens;
    return row;
  }

  /**
   * The member finished by a stop or its length, not aborted or failed: generate() computes such a
   * row on until the batch ends, its samples discarded.
   */
  get computesAfterFinishing(): boolean {
    const { status } = this.request;
    return status === "FINISHED_STOPPED" || status === "FINISHED_LENGTH";
  }

  /**
   * This step's decode of a finished row: its last token (never computed), then what it sampled
   * since, each written to its own reservation and sampled, as generate() does (which feeds its pad
   * token instead: the same cost, while this way the runner's history of the row stays what the
   * runner sampled). Null once the position would reach maxModelLen, beyond the reservation: the
   * row stops there.
   */
  throwAwayDecode(maxModelLen: number): CachedRequestData | null {
    const { request } = this;
    const position = this.nextThrowAwayPosition ?? request.numTokens - 1;
    if (position >= maxModelLen) return null;
    const tokenId = position < request.numTokens ? request.allTokenIds[position]! : this.lastThrowAwayTokenId;
    return {
      requestId: request.requestId,
      newTokenIds: [tokenId],
      newBlockIds: [],
      numComputedTokens: position,
      samplesNextToken: true,
    };
  }

  /** After a step ran the decode throwAwayDecode returned, with the token it sampled (discarded). */
  advanceThrowAwayPosition(sampledTokenId: number): void {
    this.nextThrowAwayPosition = (this.nextThrowAwayPosition ?? this.request.numTokens - 1) + 1;
    this.lastThrowAwayTokenId = sampledTokenId;
  }

  /** The highest position computed for the row so far, plus one. */
  get numComputedPositions(): number {
    return this.nextThrowAwayPosition ?? this.request.numComputedTokens;
  }
}
