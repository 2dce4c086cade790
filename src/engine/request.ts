// A request's state in the engine core: its tokens, how many of them have KV computed, where it
// stands in the scheduler's life cycle, and when it must stop generating.

import type { BlockHash } from "./block-hash.ts";
import type { KVRequest } from "./kv-request.ts";
import type { SamplingParams } from "./sampling-params.ts";

export type RequestStatus =
  | "WAITING"
  | "RUNNING"
  | "PREEMPTED"
  | "FINISHED_STOPPED"
  | "FINISHED_LENGTH"
  | "FINISHED_ABORTED"
  /** Rejected at admission; `error` says why. */
  | "FINISHED_IGNORED"
  /** Ended by the engine's own failure (a step that threw); `error` says what failed. */
  | "FINISHED_ERROR";

/**
 * OpenAI's finish reasons, plus "rejected" for a request that never ran and "error" for one the
 * engine failed (vLLM's FinishReason.ERROR).
 */
export type FinishReason = "stop" | "length" | "abort" | "rejected" | "error";

export interface RequestOptions {
  requestId: string;
  promptTokenIds: readonly number[];
  samplingParams: SamplingParams;
  /** The model's end-of-sequence token ids (generation_config.json may name several). */
  eosTokenIds?: readonly number[];
  /** Seconds, performance.now() / 1000 by default; used for latency metrics, not for ordering. */
  arrivalTime?: number;
  /** Must match, as well as the tokens, for prefix-cache blocks to be shared (LoRA, cache salt). */
  extraKey?: string;
}

export class Request implements KVRequest {
  readonly requestId: string;
  readonly promptTokenIds: readonly number[];
  readonly outputTokenIds: number[] = [];
  readonly allTokenIds: number[];
  readonly numPromptTokens: number;
  numComputedTokens = 0;
  readonly blockHashes: BlockHash[] = [];
  readonly samplingParams: SamplingParams;
  readonly eosTokenIds: readonly number[];
  readonly arrivalTime: number;
  readonly extraKey?: string;
  status: RequestStatus = "WAITING";
  /** Seconds (the clock of arrivalTime) when a scheduler first gave it KV blocks; null until then. */
  firstScheduledTime: number | null = null;
  numPreemptions = 0;
  /** The stop token id that finished the request (null for EOS, length, abort). */
  stopReason: number | null = null;
  /** Why the request was rejected or failed, for the client. */
  error: string | null = null;

  constructor(init: RequestOptions) {
    this.requestId = init.requestId;
    this.promptTokenIds = [...init.promptTokenIds];
    this.allTokenIds = [...init.promptTokenIds];
    this.numPromptTokens = init.promptTokenIds.length;
    this.samplingParams = init.samplingParams;
    this.eosTokenIds = init.eosTokenIds ?? [];
    this.arrivalTime = init.arrivalTime ?? performance.now() / 1000;
    this.extraKey = init.extraKey;
  }

  /** Prompt plus output tokens so far. */
  get numTokens(): number {
    return this.allTokenIds.length;
  }

  get numOutputTokens(): number {
    return this.outputTokenIds.length;
  }

  get isFinished(): boolean {
    return this.status.startsWith("FINISHED_");
  }

  get finishReason(): FinishReason | null {
    switch (this.status) {
      case "FINISHED_STOPPED":
        return "stop";
      case "FINISHED_LENGTH":
        return "length";
      case "FINISHED_ABORTED":
        return "abort";
      case "FINISHED_IGNORED":
        return "rejected";
      case "FINISHED_ERROR":
        return "error";
      default:
        return null;
    }
  }

  appendOutputToken(tokenId: number): void {
    this.outputTokenIds.push(tokenId);
    this.allTokenIds.push(tokenId);
  }

  /**
   * Appends the tokens sampled for the request once its last token was computed, stopping at the
   * first that finishes it (several come only from speculative decoding; any after a stop are
   * dropped). Returns the tokens kept.
   */
  appendSampledTokens(sampledTokenIds: readonly number[], maxModelLen: number): number[] {
    if (sampledTokenIds.length === 0) {
      throw new Error(`no token sampled for request ${this.requestId}, whose last token was computed this step`);
    }
    const kept: number[] = [];
    for (const tokenId of sampledTokenIds) {
      this.appendOutputToken(tokenId);
      kept.push(tokenId);
      if (this.checkStop(maxModelLen)) break;
    }
    return kept;
  }

  /**
   * Decides, after a token was appended, whether the request is done, and records why. A stop
   * token or EOS (unless ignoreEos) stops it once minTokens outputs exist; it is kept in the
   * output ids, and the output side decides whether to show it. A stop token that is also the
   * last token allowed reports "stop", the more telling reason. Otherwise maxTokens outputs, or
   * a sequence as long as the model allows (no position left for another token), stop it.
   */
  checkStop(maxModelLen: number): boolean {
    const { maxTokens, minTokens, stopTokenIds, ignoreEos } = this.samplingParams;
    const lastTokenId = this.outputTokenIds.at(-1);
    if (lastTokenId !== undefined && this.numOutputTokens >= minTokens) {
      if (stopTokenIds.includes(lastTokenId)) {
        this.stopReason = lastTokenId;
        this.status = "FINISHED_STOPPED";
        return true;
      }
      if (!ignoreEos && this.eosTokenIds.includes(lastTokenId)) {
        this.status = "FINISHED_STOPPED";
        return true;
      }
    }
    if (this.numOutputTokens >= maxTokens || this.numTokens >= maxModelLen) {
      this.status = "FINISHED_LENGTH";
      return true;
    }
    return false;
  }

  /**
   * Whether `numMoreTokens` more outputs would end the request by length (maxTokens, or no position
   * left): with async scheduling, a request whose in-flight token is its last is not scheduled again.
   */
  finishesByLengthWith(numMoreTokens: number, maxModelLen: number): boolean {
    return (
      this.numOutputTokens + numMoreTokens >= this.samplingParams.maxTokens ||
      this.numTokens + numMoreTokens >= maxModelLen
    );
  }

  /** Marks the request rejected at admission, with a message the client can act on. */
  reject(error: string): void {
    this.status = "FINISHED_IGNORED";
    this.error = error;
  }

  /** Marks the request ended by an engine failure that is not the client's doing. */
  fail(error: string): void {
    this.status = "FINISHED_ERROR";
    this.error = error;
  }
}

/**
 * Why a prompt can never run, or null: vLLM refuses prompts longer than the model's context at
 * admission rather than truncating them, and an empty prompt has no position to sample from.
 */
export function promptAdmissionError(request: Request, maxModelLen: number): string | null {
  if (request.numPromptTokens === 0) return "prompt is empty; at least one token is needed";
  if (request.numPromptTokens > maxModelLen) {
    return (
      `prompt has ${request.numPromptTokens} tokens; max model length is ${maxModelLen}. ` +
      `Shorten the prompt or raise --max-model-len.`
    );
  }
  return null;
}
