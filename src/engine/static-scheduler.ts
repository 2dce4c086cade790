// The static-batching baseline (`--scheduling static`), as Hugging Face generate() batches: a batch
// forms only when the engine is idle, reserves KV for max-length sequences up front, and runs until
// its last member finishes. Nobody joins or leaves meanwhile. Measured beside the Scheduler.

import type { BlockPool } from "./block-pool.ts";
import type { KVCacheBlock } from "./kv-cache-block.ts";
import type { KVCacheManager } from "./kv-cache-manager.ts";
import { promptAdmissionError, type Request } from "./request.ts";
import { RequestQueue } from "./request-queue.ts";
import { type EngineScheduler, type SchedulerLimits, validateSchedulerLimits } from "./scheduler-interface.ts";
import {
  type CachedRequestData,
  cachedRequestData,
  type EngineCoreOutput,
  type NewRequestData,
  newRequestData,
  type SchedulerOutput,
  type SchedulerStats,
} from "./scheduler-output.ts";
import { applyStepResults, StepProtocol } from "./step-protocol.ts";

export interface StaticSchedulerOptions extends SchedulerLimits {
  /**
   * Only its block pool and block size are used: blocks are reserved straight from the pool, so
   * the runner sees real block ids. The pool must serve this scheduler alone.
   */
  kvCacheManager: KVCacheManager;
}

interface BatchMember {
  request: Request;
  /** ceil(maxModelLen / blockSize) blocks, held from the batch's start to its end. */
  blocks: KVCacheBlock[];
  /** The runner has been sent the member's block table. */
  sentToRunner: boolean;
}

export class StaticScheduler implements EngineScheduler {
  private readonly blockPool: BlockPool;
  private readonly blockSize: number;
  private readonly maxNumBatchedTokens: number;
  private readonly maxModelLen: number;
  /** Every member decodes every step, so a batch must fit in one step's budget. */
  private readonly maxBatchSize: number;
  private readonly blocksPerRequest: number;
  private readonly waiting = new RequestQueue();
  private readonly batch = new Map<string, BatchMember>();
  private readonly step = new StepProtocol();

  constructor(options: StaticSchedulerOptions) {
    const { kvCacheManager, maxNumBatchedTokens, maxNumSeqs, maxModelLen } = options;
    validateSchedulerLimits(options, kvCacheManager.numBlocks * kvCacheManager.blockSize);
    this.blockPool = kvCacheManager.blockPool;
    this.blockSize = kvCacheManager.blockSize;
    this.maxNumBatchedTokens = maxNumBatchedTokens;
    this.maxModelLen = maxModelLen;
    this.maxBatchSize = Math.min(maxNumSeqs, maxNumBatchedTokens);
    this.blocksPerRequest = Math.ceil(maxModelLen / this.blockSize);
  }

  get numRunning(): number {
    return this.unfinishedMembers().length;
  }

  get numWaiting(): number {
    return this.waiting.length;
  }

  addRequest(request: Request): void {
    const { requestId } = request;
    if (this.batch.has(requestId) || this.waiting.has(requestId)) {
      throw new Error(`request ${requestId} is already in the scheduler`);
    }
    const error = promptAdmissionError(request, this.maxModelLen);
    if (error !== null) {
      request.reject(error);
      this.step.rejected.push(request);
      return;
    }
    this.waiting.push(request);
  }

  schedule(): SchedulerOutput {
    this.step.beginSchedule();
    if (this.batch.size === 0) this.formBatch();
    const unfinished = this.unfinishedMembers();
    // Every prompt is computed before anyone decodes, and then all decode in lockstep.
    const prefilling = unfinished.filter(({ request }) => request.numComputedTokens < request.numPromptTokens);
    let tokenBudget = this.maxNumBatchedTokens;
    const scheduledNewRequests: NewRequestData[] = [];
    const scheduledCachedRequests: CachedRequestData[] = [];
    const numScheduledTokens = new Map<string, number>();
    for (const member of prefilling.length > 0 ? prefilling : unfinished) {
      if (tokenBudget === 0) break;
      const { request } = member;
      const numNewTokens = Math.min(request.numTokens - request.numComputedTokens, tokenBudget);
      if (member.sentToRunner) {
        scheduledCachedRequests.push(cachedRequestData(request, numNewTokens, []));
      } else {
        const blockIds = member.blocks.map((block) => block.blockId);
        scheduledNewRequests.push(newRequestData(request, blockIds, numNewTokens));
        member.sentToRunner = true;
      }
      numScheduledTokens.set(request.requestId, numNewTokens);
      tokenBudget -= numNewTokens;
    }
    return this.step.issue({
      scheduledNewRequests,
      scheduledCachedRequests,
      numScheduledTokens,
      totalNumScheduledTokens: this.maxNumBatchedTokens - tokenBudget,
      preemptedRequestIds: [],
      stats: {
        numRunning: unfinished.length,
        numWaiting: this.waiting.length,
        kvCacheUsage: this.blockPool.usage,
      },
    });
  }

  updateFromOutput(
    output: SchedulerOutput,
    sampledTokenIds: ReadonlyMap<string, readonly number[]>,
  ): EngineCoreOutput[] {
    const outputs = this.step.accept(output);
    const live = (requestId: string) => {
      const request = this.batch.get(requestId)?.request;
      return request && !request.isFinished ? request : undefined;
    };
    // A finished member stops computing but keeps its reservation until the batch ends.
    const finished = (request: Request) => this.step.finishedRequestIds.add(request.requestId);
    outputs.push(...applyStepResults(output, sampledTokenIds, live, this.maxModelLen, finished));
    this.releaseBatchIfDone();
    return outputs;
  }

  /** A waiting request leaves the queue; a member stops computing, keeping its reservation. */
  abort(requestIds: Iterable<string>, error?: string): Request[] {
    const ended: Request[] = [];
    for (const requestId of requestIds) {
      const request = this.waiting.remove(requestId) ?? this.batch.get(requestId)?.request;
      if (request === undefined || request.isFinished) continue;
      if (error === undefined) request.status = "FINISHED_ABORTED";
      else request.fail(error);
      this.step.finishedRequestIds.add(requestId);
      ended.push(request);
    }
    this.releaseBatchIfDone();
    return ended;
  }

  hasUnfinishedRequests(): boolean {
    return this.waiting.length > 0 || this.unfinishedMembers().length > 0 || this.step.rejected.length > 0;
  }

  stats(): SchedulerStats {
    let tokensStored = 0;
    for (const { request } of this.batch.values()) tokensStored += request.numComputedTokens;
    const allocatedSlots = this.batch.size * this.blocksPerRequest * this.blockSize;
    return {
      numRunning: this.numRunning,
      numWaiting: this.waiting.length,
      kvCacheUsage: this.blockPool.usage,
      prefixCacheHitRate: 0,
      prefixCacheQueries: 0,
      prefixCacheHits: 0,
      numPreemptions: 0,
      tokensStored,
      allocatedSlots,
      wasteRatio: allocatedSlots === 0 ? 0 : (allocatedSlots - tokensStored) / allocatedSlots,
    };
  }

  checkInvariants(): void {
    this.blockPool.checkInvariants();
    const fail = (message: string): never => {
      throw new Error(`StaticScheduler invariant violated: ${message}`);
    };
    if (this.batch.size > this.maxBatchSize) fail(`batch of ${this.batch.size} > ${this.maxBatchSize}`);
    const owner = new Map<KVCacheBlock, string>();
    for (const { request, blocks } of this.batch.values()) {
      const { requestId, numComputedTokens } = request;
      if (blocks.length !== this.blocksPerRequest) fail(`${requestId} holds ${blocks.length} blocks`);
      for (const block of blocks) {
        const other = owner.get(block);
        if (other !== undefined) fail(`block ${block.blockId} reserved by ${other} and ${requestId}`);
        if (block.refCount !== 1) fail(`block ${block.blockId} has refCount ${block.refCount}`);
        owner.set(block, requestId);
      }
      if (numComputedTokens > request.numTokens || numComputedTokens > this.maxModelLen) {
        fail(`${requestId} has ${numComputedTokens} computed tokens`);
      }
    }
    const numUsedBlocks = this.blockPool.numBlocks - this.blockPool.numFreeBlocks;
    if (numUsedBlocks !== owner.size) fail(`${numUsedBlocks} blocks in use but ${owner.size} reserved`);
    for (const request of this.waiting) {
      if (request.numComputedTokens !== 0) {
        fail(`waiting request ${request.requestId} has computed tokens`);
      }
    }
  }

  private unfinishedMembers(): BatchMember[] {
    return [...this.batch.values()].filter(({ request }) => !request.isFinished);
  }

  /** Takes the head of the queue, as many as the batch size and the free blocks allow. */
  private formBatch(): void {
    const numFitting = Math.floor(this.blockPool.numFreeBlocks / this.blocksPerRequest);
    const size = Math.min(this.maxBatchSize, this.waiting.length, numFitting);
    for (let i = 0; i < size; i++) {
      const request = this.waiting.shift()!;
      request.status = "RUNNING";
      request.firstScheduledTime ??= performance.now() / 1000;
      const blocks = this.blockPool.getNewBlocks(this.blocksPerRequest);
      this.batch.set(request.requestId, { request, blocks, sentToRunner: false });
    }
  }

  /** Once every member has finished, the whole reservation is freed at once. */
  private releaseBatchIfDone(): void {
    if (this.batch.size === 0 || this.unfinishedMembers().length > 0) return;
    for (const { blocks } of this.batch.values()) this.blockPool.freeBlocks(blocks);
    this.batch.clear();
  }
}
