// The contract between a scheduler and the engine core's step loop: the scheduler output a model
// runner consumes, the per-request outputs a step produces, the stats, and the helpers that the
// continuous and static schedulers share to honour it.

import type { FinishReason, Request } from "./request.ts";
import type { SamplingParams } from "./sampling-params.ts";

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
  /** Token ids of this step's positions: the last sampled token for a decode, else a chunk. */
  newTokenIds: readonly number[];
  /** Blocks appended to its block table this step. */
  newBlockIds: readonly number[];
  /** This step's positions start here. */
  numComputedTokens: number;
  samplesNextToken: boolean;
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
}

export interface SchedulerStats {
  numRunning: number;
  numWaiting: number;
  kvCacheUsage: number;
  /** Tokens found in the prefix cache / tokens of admitted requests (resumed ones included). */
  prefixCacheHitRate: number;
  /** Since the scheduler was created. */
  numPreemptions: number;
  /** KV slots holding a token (a slot shared by several requests counts once). */
  tokensStored: number;
  /** Slots of the blocks held by requests (reserved, for the static scheduler). */
  allocatedSlots: number;
  /** Allocated slots holding no token / allocated slots; 0 when nothing is allocated. */
  wasteRatio: number;
}

/**
 * The step protocol: `schedule()`, run the model on its output, then `updateFromOutput()` with
 * the tokens sampled for the requests whose output says samplesNextToken.
 */
export interface EngineScheduler {
  /** Queues a request, or rejects it (its output comes with the next updateFromOutput). */
  addRequest(request: Request): void;
  schedule(): SchedulerOutput;
  updateFromOutput(
    output: SchedulerOutput,
    sampledTokenIds: ReadonlyMap<string, readonly number[]>,
  ): EngineCoreOutput[];
  /** Ends the requests now; unknown or finished ids are ignored. */
  abort(requestIds: Iterable<string>): void;
  /** True while a request waits, runs, or has a rejection not yet reported. */
  hasUnfinishedRequests(): boolean;
  readonly numRunning: number;
  readonly numWaiting: number;
  stats(): SchedulerStats;
  /** Throws if block ownership or the scheduler's own bookkeeping is inconsistent. */
  checkInvariants(): void;
}

/** The limits every scheduler takes. */
export interface SchedulerLimits {
  /** Token budget of one step (vLLM's max_num_batched_tokens). */
  maxNumBatchedTokens: number;
  /** Most requests running at once (vLLM's max_num_seqs). */
  maxNumSeqs: number;
  /** Longest sequence, prompt plus output, the model may hold. */
  maxModelLen: number;
}

/**
 * Throws a configuration error unless the limits are positive integers and one sequence of
 * maxModelLen tokens fits in the KV cache: otherwise a long request would preempt everyone,
 * itself last, forever (vLLM refuses such a configuration at startup too).
 */
export function validateSchedulerLimits(limits: SchedulerLimits, kvCacheSlots: number): void {
  const { maxNumBatchedTokens, maxNumSeqs, maxModelLen } = limits;
  const named = { maxNumBatchedTokens, maxNumSeqs, maxModelLen };
  for (const [name, value] of Object.entries(named)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`${name} must be a positive integer, got ${value}`);
    }
  }
  if (kvCacheSlots < limits.maxModelLen) {
    throw new RangeError(
      `the KV cache holds ${kvCacheSlots} tokens, fewer than one sequence of max model length ` +
        `${limits.maxModelLen}: raise the KV-cache memory or lower --max-model-len`,
    );
  }
}

/** The record of a request the runner learns of this step, computing numNewTokens tokens. */
export function newRequestData(
  request: Request,
  blockIds: readonly number[],
  numNewTokens: number,
): NewRequestData {
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

/** The record of a request the runner already holds, computing numNewTokens tokens this step. */
export function cachedRequestData(
  request: Request,
  numNewTokens: number,
  newBlockIds: readonly number[],
): CachedRequestData {
  const start = request.numComputedTokens;
  return {
    requestId: request.requestId,
    newTokenIds: request.allTokenIds.slice(start, start + numNewTokens),
    newBlockIds,
    numComputedTokens: start,
    samplesNextToken: start + numNewTokens === request.numTokens,
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
  };
}

/**
 * The part of updateFromOutput both schedulers share: every scheduled request still live
 * advances by the tokens it computed; one whose prompt (or resumed history) is now complete takes
 * its sampled token and may finish. What a finished request does next is the policy's:
 * `onFinished` (leave at once, or keep a static batch's reservation).
 */
export function applyStepResults(
  output: SchedulerOutput,
  sampledTokenIds: ReadonlyMap<string, readonly number[]>,
  liveRequest: (requestId: string) => Request | undefined,
  maxModelLen: number,
  onFinished: (request: Request) => void,
): EngineCoreOutput[] {
  const outputs: EngineCoreOutput[] = [];
  for (const [requestId, numTokens] of output.numScheduledTokens) {
    // Undefined when aborted since the step was scheduled: its blocks are already handled.
    const request = liveRequest(requestId);
    if (request === undefined) continue;
    request.numComputedTokens += numTokens;
    // A partial prefill: the logits of its last position predict a token already known.
    if (request.numComputedTokens < request.numTokens) continue;
    const newTokenIds = request.appendSampledTokens(sampledTokenIds.get(requestId) ?? [], maxModelLen);
    if (request.isFinished) onFinished(request);
    outputs.push(engineCoreOutput(request, newTokenIds));
  }
  return outputs;
}

/**
 * The bookkeeping both schedulers share around a step: schedule() and updateFromOutput() must
 * alternate, requests rejected at admission and requests finished between steps are reported with
 * the next step.
 */
export class StepProtocol {
  /** Rejected at admission, reported by the next updateFromOutput. */
  readonly rejected: Request[] = [];
  /** Finished or aborted since the last schedule(): the runner drops their state. */
  readonly finishedRequestIds = new Set<string>();
  private pending: SchedulerOutput | null = null;

  /** At the start of schedule(). */
  beginSchedule(): void {
    if (this.pending !== null) {
      throw new Error("schedule() called again before updateFromOutput() of the previous step");
    }
  }

  /** The step's output, with the finished ids collected since the last one. */
  issue(parts: Omit<SchedulerOutput, "finishedRequestIds">): SchedulerOutput {
    const output: SchedulerOutput = { ...parts, finishedRequestIds: [...this.finishedRequestIds] };
    this.finishedRequestIds.clear();
    this.pending = output;
    return output;
  }

  /** At the start of updateFromOutput(): checks the alternation; returns the rejections owed. */
  accept(output: SchedulerOutput): EngineCoreOutput[] {
    if (output !== this.pending) {
      throw new Error("updateFromOutput() must be given the output of the last schedule()");
    }
    this.pending = null;
    return this.rejected.splice(0).map((request) => engineCoreOutput(request, []));
  }
}
