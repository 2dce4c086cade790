// The records a scheduler step produces: the plan the model runner consumes (SchedulerOutput,
// vLLM's names), each request's output (EngineCoreOutput) and the scheduler's statistics; and
// how those records are made from a request.
import type { FinishReason, Request } from "./request.ts";
import type { SamplingParams } from "./sampling-params.ts";
import { type InFlight, NOTHING_IN_FLIGHT } from "./step-protocol.ts";

/** A request the runner holds no state for: scheduled for the first time, or resumed. */
export interface NewRequestData {
  requestId: string;
  /** Prompt, then the outputs a resumed request had produced (recomputed like a prompt). */
  tokenIds: readonly number[];
  numPromptTokens: number;
  /** The whole block table: block ids in token order. */
  blockIds: readonly number[];
  /** Tokens whose KV is already cached (prefix hits); this step's positions start here. */
  numComputedTokens: number;
  /** True when this step computes the request's last token, so its logits give the next one. */
  samplesNextToken: boolean;
  samplingParams: SamplingParams;
  eosTokenIds: readonly number[];
}

/** A request the runner already holds, scheduled again (decode, or the next prefill chunk). */
export interface CachedRequestData {
  requestId: string;
  /**
   * Token ids of this step's positions: the last sampled token for a decode, else a chunk. With
   * async scheduling a token sampled by the step still running is left out: the runner has it.
   */
  newTokenIds: readonly number[];
  /** Blocks appended to its block table this step. */
  newBlockIds: readonly number[];
  /** This step's positions start here. */
  numComputedTokens: number;
  samplesNextToken: boolean;
}

/**
 * Prompt padding computed and thrown away, as Hugging Face generate() pads a static batch's prompts
 * to the longest (--scheduling static). The runner computes it as a sequence of its own beside its
 * request: positions numComputedTokens .. numComputedTokens + numTokens - 1 of the padding, reading
 * the request's block table but writing no KV (slot -1), never sampled. So it costs the forward
 * work padding costs while no real sequence ever attends to it: the request's tokens are those it
 * gets unpadded, as Hugging Face's attention mask makes them.
 */
export interface PaddingRow {
  /** The request whose prompt it pads (the runner holds its block table). */
  requestId: string;
  /** Padding tokens computed in earlier steps. */
  numComputedTokens: number;
  numTokens: number;
}

export interface SchedulerStepStats {
  numRunning: number;
  numWaiting: number;
  /** Fraction of the KV-cache blocks held by requests, in [0, 1]. */
  kvCacheUsage: number;
}

/**
 * One step's plan: which requests compute how many new tokens. Request r computes positions
 * numComputedTokens .. numComputedTokens + numScheduledTokens.get(r) - 1.
 */
export interface SchedulerOutput {
  scheduledNewRequests: NewRequestData[];
  scheduledCachedRequests: CachedRequestData[];
  numScheduledTokens: Map<string, number>;
  totalNumScheduledTokens: number;
  /** Padding computed beside the requests this step; its tokens count against the step's budget. */
  paddingRows: PaddingRow[];
  /** Preempted this step: the runner drops their state (they come back as new requests). */
  preemptedRequestIds: string[];
  /** Finished or aborted since the previous step: the runner drops their state. */
  finishedRequestIds: string[];
  stats: SchedulerStepStats;
}

/** What one step produced for one request (vLLM's EngineCoreOutput). */
export interface EngineCoreOutput {
  requestId: string;
  newTokenIds: number[];
  finished: boolean;
  /** Null while the request runs. */
  finishReason: FinishReason | null;
  /** The stop token id that finished it, if one did. */
  stopReason: number | null;
  /** Why the request was rejected at admission. */
  error: string | null;
  /** Seconds from its arrival to its first scheduling (null until then). */
  queueSeconds: number | null;
}

export interface SchedulerStats {
  numRunning: number;
  numWaiting: number;
  kvCacheUsage: number;
  /** Tokens found in the prefix cache / tokens of admitted requests (resumed ones included). */
  prefixCacheHitRate: number;
  /** Tokens of admitted requests looked up in the prefix cache, since the scheduler was created. */
  prefixCacheQueries: number;
  /** Of those, tokens found there. */
  prefixCacheHits: number;
  /** Since the scheduler was created. */
  numPreemptions: number;
  /** KV slots holding a token (a slot shared by several requests counts once). */
  tokensStored: number;
  /** Slots of the blocks held by requests (reserved, for the static scheduler). */
  allocatedSlots: number;
  /** Allocated slots holding no token / allocated slots; 0 when nothing is allocated. */
  wasteRatio: number;
}

/** The record of a request the runner learns of this step, computing numNewTokens tokens. */
export function newRequestData(request: Request, blockIds: readonly number[], numNewTokens: number): NewRequestData {
  return {
    requestId: request.requestId,
    tokenIds: [...request.allTokenIds],
    numPromptTokens: request.numPromptTokens,
    blockIds,
    numComputedTokens: request.numComputedTokens,
    samplesNextToken: request.numComputedTokens + numNewTokens === request.numTokens,
    samplingParams: request.samplingParams,
    eosTokenIds: request.eosTokenIds,
  };
}

/**
 * The record of a request the runner already holds, computing numNewTokens tokens this step after
 * what the steps still in flight compute (async scheduling; nothing otherwise).
 */
export function cachedRequestData(
  request: Request,
  numNewTokens: number,
  newBlockIds: readonly number[],
  inFlight: InFlight = NOTHING_IN_FLIGHT,
): CachedRequestData {
  const start = request.numComputedTokens + inFlight.numTokens;
  return {
    requestId: request.requestId,
    newTokenIds: request.allTokenIds.slice(start, start + numNewTokens),
    newBlockIds,
    numComputedTokens: start,
    samplesNextToken: start + numNewTokens === request.numTokens + (inFlight.samples ? 1 : 0),
  };
}

/** A request's output for this step, given the tokens it gained. */
export function engineCoreOutput(request: Request, newTokenIds: number[]): EngineCoreOutput {
  return {
    requestId: request.requestId,
    newTokenIds,
    finished: request.isFinished,
    finishReason: request.finishReason,
    stopReason: request.stopReason,
    error: request.error,
    queueSeconds: request.firstScheduledTime === null ? null : request.firstScheduledTime - request.arrivalTime,
  };
}
