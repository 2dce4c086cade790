// The continuous-batching scheduler of vLLM's V1 engine: every step decides how many new tokens each
// request computes, running requests first, then waiting ones in arrival order, within a token
// budget and a sequence cap; requests join and leave the batch at any step.

import type { KVCacheBlock } from "./kv-cache-block.ts";
import type { KVCacheManager } from "./kv-cache-manager.ts";
import { promptAdmissionError, type Request } from "./request.ts";
import { RequestQueue } from "./request-queue.ts";
import { type EngineScheduler, type SchedulerLimits, validateSchedulerLimits } from "./scheduler-interface.ts";
import {
  type CachedRequestData,
  cachedRequestData,
  type EngineCoreOutput,
  engineCoreOutput,
  type NewRequestData,
  newRequestData,
  type SchedulerOutput,
  type SchedulerStats,
} from "./scheduler-output.ts";
import { applyStepResults, StepProtocol } from "./step-protocol.ts";

export interface SchedulerOptions extends SchedulerLimits {
  kvCacheManager: KVCacheManager;
  /**
   * Split prompts into chunks that fit the step's remaining budget. Without it a prompt runs
   * whole or waits, so maxNumBatchedTokens must be at least maxModelLen (as vLLM requires).
   */
  enableChunkedPrefill: boolean;
  /**
   * With chunked prefill, the most tokens a request prefills in one step (0: no cap), so that
   * one long prompt cannot take a whole step's budget from the others.
   */
  longPrefillTokenThreshold?: number;
  /**
   * vLLM's async scheduling: the next step may be scheduled while the previous one still runs
   * (before its updateFromOutput), each request it samples counted as one token longer.
   */
  asyncScheduling?: boolean;
}

export class Scheduler implements EngineScheduler {
  private readonly kvCacheManager: KVCacheManager;
  private readonly maxNumBatchedTokens: number;
  private readonly maxNumSeqs: number;
  private readonly maxModelLen: number;
  private readonly enableChunkedPrefill: boolean;
  private readonly longPrefillTokenThreshold: number;
  /** Every waiting or running request, by id. */
  private readonly requests = new Map<string, Request>();
  /** Arrival order, except that preempted requests go back to the head. */
  private readonly waiting = new RequestQueue();
  /** Admission order: the last one is the newest, the first to be preempted. */
  private readonly running: Request[] = [];
  private readonly step: StepProtocol;
  private numPreemptions = 0;
  private numAdmittedTokens = 0;
  private numPrefixHitTokens = 0;

  constructor(options: SchedulerOptions) {
    const { kvCacheManager, maxNumBatchedTokens, maxModelLen, enableChunkedPrefill } = options;
    validateSchedulerLimits(options, kvCacheManager.numBlocks * kvCacheManager.blockSize);
    if (!enableChunkedPrefill && maxNumBatchedTokens < maxModelLen) {
      throw new RangeError(
        `without chunked prefill a whole prompt must fit in one step, but maxNumBatchedTokens ` +
          `(${maxNumBatchedTokens}) < maxModelLen (${maxModelLen}): raise ` +
          `--max-num-batched-tokens, lower --max-model-len or enable chunked prefill`,
      );
    }
    const threshold = options.longPrefillTokenThreshold ?? 0;
    if (!Number.isSafeInteger(threshold) || threshold < 0) {
      throw new RangeError(`longPrefillTokenThreshold must be an integer >= 0, got ${threshold}`);
    }
    this.kvCacheManager = kvCacheManager;
    this.maxNumBatchedTokens = maxNumBatchedTokens;
    this.maxNumSeqs = options.maxNumSeqs;
    this.maxModelLen = maxModelLen;
    this.enableChunkedPrefill = enableChunkedPrefill;
    this.longPrefillTokenThreshold = threshold;
    this.step = new StepProtocol(options.asyncScheduling ? 2 : 1);
  }

  get numRunning(): number {
    return this.running.length;
  }

  get numWaiting(): number {
    return this.waiting.length;
  }

  addRequest(request: Request): void {
    if (this.requests.has(request.requestId)) {
      throw new Error(`request ${request.requestId} is already in the scheduler`);
    }
    const error = promptAdmissionError(request, this.maxModelLen);
    if (error !== null) {
      request.reject(error);
      this.step.rejected.push(request);
      return;
    }
    this.requests.set(request.requestId, request);
    this.waiting.push(request);
  }

  schedule(): SchedulerOutput {
    this.step.beginSchedule();
    let tokenBudget = this.maxNumBatchedTokens;
    const scheduledNewRequests: NewRequestData[] = [];
    const scheduledCachedRequests: CachedRequestData[] = [];
    const numScheduledTokens = new Map<string, number>();
    const preemptedRequestIds: string[] = [];

    // Running requests first: they hold blocks, and finishing them frees memory soonest. What a
    // step still running computes for one (async scheduling) counts as computed, and the token it
    // samples as known but for its id.
    for (let i = 0; i < this.running.length && tokenBudget > 0; i++) {
      const request = this.running[i]!;
      const inFlight = this.step.inFlight(request.requestId);
      const numUnknown = inFlight.samples ? 1 : 0;
      // Its token in flight will be its last: nothing to compute after it.
      if (numUnknown > 0 && request.finishesByLengthWith(numUnknown, this.maxModelLen)) continue;
      const numUncomputed = request.numTokens + numUnknown - request.numComputedTokens - inFlight.numTokens;
      const numNewTokens = Math.min(this.chunk(numUncomputed), tokenBudget);
      const newBlocks = this.allocateOrPreempt(
        request,
        inFlight.numTokens + numNewTokens,
        numUnknown,
        preemptedRequestIds,
      );
      if (newBlocks === null) break;
      const newBlockIds = newBlocks.map((block) => block.blockId);
      scheduledCachedRequests.push(cachedRequestData(request, numNewTokens, newBlockIds, inFlight));
      numScheduledTokens.set(request.requestId, numNewTokens);
      tokenBudget -= numNewTokens;
    }

    // Then waiting requests, strictly first come first served. As in vLLM, none is admitted in a
    // step that had to preempt: memory is short, and a newcomer would only be preempted next.
    while (
      preemptedRequestIds.length === 0 &&
      this.waiting.length > 0 &&
      tokenBudget > 0 &&
      this.running.length < this.maxNumSeqs
    ) {
      const request = this.waiting.peek()!;
      const computed = this.kvCacheManager.getComputedBlocks(request);
      let numNewTokens = request.numTokens - computed.numComputedTokens;
      if (this.enableChunkedPrefill) {
        numNewTokens = Math.min(this.chunk(numNewTokens), tokenBudget);
      } else if (numNewTokens > tokenBudget) {
        break;
      }
      if (this.kvCacheManager.allocateSlots(request, numNewTokens, computed.blocks) === null) break;
      this.waiting.shift();
      this.running.push(request);
      request.status = "RUNNING";
      request.firstScheduledTime ??= performance.now() / 1000;
      request.numComputedTokens = computed.numComputedTokens;
      this.numAdmittedTokens += request.numTokens;
      this.numPrefixHitTokens += computed.numComputedTokens;
      const blockIds = this.kvCacheManager.blockIds(request.requestId);
      scheduledNewRequests.push(newRequestData(request, blockIds, numNewTokens));
      numScheduledTokens.set(request.requestId, numNewTokens);
      tokenBudget -= numNewTokens;
    }

    return this.step.issue({
      scheduledNewRequests,
      scheduledCachedRequests,
      numScheduledTokens,
      totalNumScheduledTokens: this.maxNumBatchedTokens - tokenBudget,
      paddingRows: [],
      preemptedRequestIds,
      stats: {
        numRunning: this.running.length,
        numWaiting: this.waiting.length,
        kvCacheUsage: this.kvCacheManager.usage,
      },
    });
  }

  updateFromOutput(
    output: SchedulerOutput,
    sampledTokenIds: ReadonlyMap<string, readonly number[]>,
  ): EngineCoreOutput[] {
    const outputs = this.step.accept(output);
    outputs.push(...this.applyToPreempted(output, sampledTokenIds));
    const live = (requestId: string) => {
      const request = this.requests.get(requestId);
      return request?.status === "RUNNING" ? request : undefined;
    };
    // Leaving at once frees the blocks for the next step's admissions.
    outputs.push(
      ...applyStepResults(output, sampledTokenIds, live, this.maxModelLen, (request) => this.remove(request)),
    );
    return outputs;
  }

  /**
   * With async scheduling a request can be preempted by the next step's schedule() while this step
   * still computed it. The token it sampled is the request's all the same (drawn again, a seeded
   * request's stream would change); its computed tokens went with its blocks.
   */
  private applyToPreempted(
    output: SchedulerOutput,
    sampledTokenIds: ReadonlyMap<string, readonly number[]>,
  ): EngineCoreOutput[] {
    const outputs: EngineCoreOutput[] = [];
    for (const [requestId, tokenIds] of sampledTokenIds) {
      const request = this.requests.get(requestId);
      if (request?.status !== "PREEMPTED" || !output.numScheduledTokens.has(requestId)) continue;
      const newTokenIds = request.appendSampledTokens(tokenIds, this.maxModelLen);
      if (request.isFinished) this.remove(request);
      outputs.push(engineCoreOutput(request, newTokenIds));
    }
    return outputs;
  }

  abort(requestIds: Iterable<string>, error?: string): Request[] {
    const ended: Request[] = [];
    for (const requestId of requestIds) {
      const request = this.requests.get(requestId);
      if (request === undefined) continue;
      if (error === undefined) request.status = "FINISHED_ABORTED";
      else request.fail(error);
      this.remove(request);
      ended.push(request);
    }
    return ended;
  }

  hasUnfinishedRequests(): boolean {
    return this.requests.size > 0 || this.step.rejected.length > 0;
  }

  stats(): SchedulerStats {
    const kv = this.kvCacheManager.stats();
    return {
      numRunning: this.running.length,
      numWaiting: this.waiting.length,
      kvCacheUsage: this.kvCacheManager.usage,
      prefixCacheHitRate: this.numAdmittedTokens === 0 ? 0 : this.numPrefixHitTokens / this.numAdmittedTokens,
      prefixCacheQueries: this.numAdmittedTokens,
      prefixCacheHits: this.numPrefixHitTokens,
      numPreemptions: this.numPreemptions,
      tokensStored: kv.tokensStored,
      allocatedSlots: kv.allocatedSlots,
      wasteRatio: kv.wasteRatio,
    };
  }

  checkInvariants(): void {
    this.kvCacheManager.checkInvariants(this.requests.values());
    const fail = (message: string): never => {
      throw new Error(`Scheduler invariant violated: ${message}`);
    };
    if (this.running.length > this.maxNumSeqs) {
      fail(`${this.running.length} requests running, more than maxNumSeqs ${this.maxNumSeqs}`);
    }
    if (this.running.length + this.waiting.length !== this.requests.size) {
      const { length: numRunning } = this.running;
      fail(`${numRunning} running + ${this.waiting.length} waiting != ${this.requests.size} known`);
    }
    for (const request of this.waiting) {
      if (request.status !== "WAITING" && request.status !== "PREEMPTED") {
        fail(`waiting request ${request.requestId} has status ${request.status}`);
      }
      if (request.numComputedTokens !== 0 || this.kvCacheManager.numBlocksOf(request.requestId) > 0) {
        fail(`waiting request ${request.requestId} holds computed tokens or blocks`);
      }
    }
    for (const request of this.running) {
      if (request.status !== "RUNNING") {
        fail(`running request ${request.requestId} has status ${request.status}`);
      }
      if (request.numComputedTokens >= request.numTokens) {
        fail(`running request ${request.requestId} has no token left to compute`);
      }
    }
  }

  /** A prefill's length this step, before the budget: capped by the long-prefill threshold. */
  private chunk(numTokens: number): number {
    const threshold = this.longPrefillTokenThreshold;
    return this.enableChunkedPrefill && threshold > 0 ? Math.min(numTokens, threshold) : numTokens;
  }

  /**
   * Allocates the slots of a running request's new tokens, preempting the newest running requests
   * until they fit. Returns null when the request itself was the newest and had to go.
   */
  private allocateOrPreempt(
    request: Request,
    numNewTokens: number,
    numUnknownTokens: number,
    preemptedRequestIds: string[],
  ): KVCacheBlock[] | null {
    for (;;) {
      const newBlocks = this.kvCacheManager.allocateSlots(request, numNewTokens, [], numUnknownTokens);
      if (newBlocks !== null) return newBlocks;
      const victim = this.running.pop()!;
      this.preempt(victim);
      preemptedRequestIds.push(victim.requestId);
      if (victim === request) return null;
    }
  }

  /** Recompute-style preemption: the KV is dropped and recomputed from the tokens on return. */
  private preempt(request: Request): void {
    this.kvCacheManager.free(request);
    request.status = "PREEMPTED";
    request.numComputedTokens = 0;
    request.numPreemptions++;
    this.numPreemptions++;
    this.waiting.pushFront(request);
  }

  /** Drops a finished or aborted request from the queues and frees its blocks at once. */
  private remove(request: Request): void {
    this.requests.delete(request.requestId);
    // A waiting request leaves its queue in O(1); the running list is at most maxNumSeqs long.
    if (this.waiting.remove(request.requestId) === undefined) {
      const index = this.running.indexOf(request);
      if (index >= 0) this.running.splice(index, 1);
    }
    this.kvCacheManager.free(request);
    this.step.finishedRequestIds.add(request.requestId);
  }
}
