// The contract between a scheduler (continuous or static) and the engine core's step loop, and
// the limits every scheduler takes.
import type { Request } from "./request.ts";
import type { EngineCoreOutput, SchedulerOutput, SchedulerStats } from "./scheduler-output.ts";

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
  /**
   * Ends the requests now, aborted or, given an error, failed with it; unknown or finished ids
   * are ignored. Returns the requests it ended.
   */
  abort(requestIds: Iterable<string>, error?: string): Request[];
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
