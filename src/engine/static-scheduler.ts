// The static-batching baselines, measured beside the continuous Scheduler. A batch forms only when
// the engine is idle and reserves KV for max-length sequences up front; nobody joins it until it
// ends. `--scheduling static` runs it as Hugging Face generate() runs a static batch: prompts padded
// to the longest (the padding computed), every row computed until the longest one ends, the whole
// batch returned at its end. `--scheduling static-drop` computes no padding, stops a row once it
// finishes and returns it at once: the kinder baseline this engine had first.
//
// generate()'s extra work is done for its cost without changing any request's tokens. Padding rows
// are sequences of their own in the step's batch that write no KV (PaddingRow), so they cost a
// padded prefill while no real row attends to them, as generate()'s attention mask ensures (its
// decode steps also attend over the padded keys; that small share of a step is left out). A
// finished row decodes on into its own reservation, its samples discarded (BatchMember), and stops
// at max-model-len, where the reservation ends.

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
  engineCoreOutput,
  type NewRequestData,
  newRequestData,
  type PaddingRow,
  type SchedulerOutput,
  type SchedulerStats,
} from "./scheduler-output.ts";
import { BatchMember } from "./static-batch-member.ts";
import { applyStepResults, StepProtocol } from "./step-protocol.ts";

export interface StaticSchedulerOptions extends SchedulerLimits {
  /**
   * Only its block pool and block size are used: blocks are reserved straight from the pool, so
   * the runner sees real block ids. The pool must serve this scheduler alone.
   */
  kvCacheManager: KVCacheManager;
  /** static-drop: no padding; a finished row stops computing and is returned at once. */
  dropFinishedRows: boolean;
}

export class StaticScheduler implements EngineScheduler {
  private readonly blockPool: BlockPool;
  private readonly blockSize: number;
  private readonly maxNumBatchedTokens: number;
  private readonly maxModelLen: number;
  /** Every member decodes every step, so a batch must fit in one step's budget. */
  private readonly maxBatchSize: number;
  private readonly blocksPerRequest: number;
  private readonly dropFinishedRows: boolean;
  private readonly waiting = new RequestQueue();
  private readonly batch = new Map<string, BatchMember>();
  /** A batch's outputs when it ended outside updateFromOutput (its last member aborted). */
  private readonly outputsOwed: EngineCoreOutput[] = [];
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
    this.dropFinishedRows = options.dropFinishedRows;
  }

  /** Rows the batch computes: finished ones too, as generate() computes them. */
  get numRunning(): number {
    return this.computingMembers().length;
  }

  get numWaiting(): number {
    return this.waiting.length;
  }

  addRequest(request: Request): void {
    const { requestId } = request;
    if (this.batch.has(requestId) || this.waiting.has(requestId)) {
      throw new Error(`request ${requestId} is already in the scheduler`);
    }
    const error = this.admissionError(request);
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
    const computing = this.computingMembers();
    // Every prompt (and its padding) is computed before anyone decodes; then all decode in lockstep.
    const prefilling = computing.filter((member) => member.isPrefilling);
    let tokenBudget = this.maxNumBatchedTokens;
    const scheduledNewRequests: NewRequestData[] = [];
    const scheduledCachedRequests: CachedRequestData[] = [];
    const numScheduledTokens = new Map<string, number>();
    const paddingRows: PaddingRow[] = [];
    const scheduleTokens = (member: BatchMember, numNewTokens: number) => {
      const { request } = member;
      if (member.sentToRunner) {
        scheduledCachedRequests.push(cachedRequestData(request, numNewTokens, []));
      } else {
        const blockIds = member.blocks.map((block) => block.blockId);
        scheduledNewRequests.push(newRequestData(request, blockIds, numNewTokens));
        member.sentToRunner = true;
      }
      numScheduledTokens.set(request.requestId, numNewTokens);
      tokenBudget -= numNewTokens;
    };
    for (const member of prefilling) {
      if (tokenBudget === 0) break;
      const { request } = member;
      // The prompt before its padding, so that the runner holds the block table the padding reads.
      const numPromptTokens = Math.min(request.numPromptTokens - request.numComputedTokens, tokenBudget);
      if (numPromptTokens > 0) scheduleTokens(member, numPromptTokens);
      const numPaddingTokens = Math.min(member.numUncomputedPaddingTokens, tokenBudget);
      if (numPaddingTokens > 0) {
        paddingRows.push(member.takePadding(numPaddingTokens));
        tokenBudget -= numPaddingTokens;
      }
    }
    if (prefilling.length === 0) {
      for (const member of computing) {
        const { request } = member;
        if (!request.isFinished) {
          scheduleTokens(member, 1);
          continue;
        }
        const decode = member.throwAwayDecode(this.maxModelLen);
        if (decode === null) continue;
        scheduledCachedRequests.push(decode);
        numScheduledTokens.set(request.requestId, 1);
        tokenBudget--;
      }
    }
    const numPaddingTokens = paddingRows.reduce((sum, row) => sum + row.numTokens, 0);
    return this.step.issue({
      scheduledNewRequests,
      scheduledCachedRequests,
      numScheduledTokens,
      totalNumScheduledTokens: this.maxNumBatchedTokens - tokenBudget - numPaddingTokens,
      paddingRows,
      preemptedRequestIds: [],
      stats: {
        numRunning: computing.length,
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
    outputs.push(...this.outputsOwed.splice(0));
    // Rows that had finished before this step computed a throw-away position; their samples go.
    // (None come from a step that failed: it ended every live member, and so the batch.)
    for (const requestId of output.numScheduledTokens.keys()) {
      const member = this.batch.get(requestId);
      const sampled = sampledTokenIds.get(requestId)?.[0];
      if (member?.computesAfterFinishing && sampled !== undefined) member.advanceThrowAwayPosition(sampled);
    }
    const live = (requestId: string) => {
      const request = this.batch.get(requestId)?.request;
      return request && !request.isFinished ? request : undefined;
    };
    // A finished row keeps its reservation until the batch ends; the runner drops a dropped row now.
    const onFinished = (request: Request) => {
      if (this.dropFinishedRows) this.step.finishedRequestIds.add(request.requestId);
    };
    const stepOutputs = applyStepResults(output, sampledTokenIds, live, this.maxModelLen, onFinished);
    if (this.dropFinishedRows) outputs.push(...stepOutputs);
    else for (const { requestId, newTokenIds } of stepOutputs) this.member(requestId).keep(newTokenIds);
    outputs.push(...this.endBatchIfDone());
    return outputs;
  }

  /**
   * A waiting request leaves the queue; a member stops computing, keeping its reservation until the
   * batch ends. Nothing is returned for either.
   */
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
    this.outputsOwed.push(...this.endBatchIfDone());
    return ended;
  }

  hasUnfinishedRequests(): boolean {
    return (
      this.waiting.length > 0 || this.batch.size > 0 || this.step.rejected.length > 0 || this.outputsOwed.length > 0
    );
  }

  /** Only the requests' own tokens are stored: padding and thrown-away positions are waste. */
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
    for (const member of this.batch.values()) {
      const { request, blocks } = member;
      const { requestId, numComputedTokens } = request;
      if (blocks.length !== this.blocksPerRequest) fail(`${requestId} holds ${blocks.length} blocks`);
      for (const block of blocks) {
        const other = owner.get(block);
        if (other !== undefined) fail(`block ${block.blockId} reserved by ${other} and ${requestId}`);
        if (block.refCount !== 1) fail(`block ${block.blockId} has refCount ${block.refCount}`);
        owner.set(block, requestId);
      }
      if (numComputedTokens > request.numTokens) fail(`${requestId} has ${numComputedTokens} computed tokens`);
      if (member.numComputedPositions > this.maxModelLen) {
        fail(`${requestId} computed ${member.numComputedPositions} positions, beyond its reservation`);
      }
      if (member.numUncomputedPaddingTokens < 0) fail(`${requestId} computed more padding than it has`);
      if (this.dropFinishedRows && member.numPaddingTokens > 0) fail(`${requestId} is padded in static-drop`);
    }
    const numUsedBlocks = this.blockPool.numBlocks - this.blockPool.numFreeBlocks;
    if (numUsedBlocks !== owner.size) fail(`${numUsedBlocks} blocks in use but ${owner.size} reserved`);
    for (const request of this.waiting) {
      if (request.numComputedTokens !== 0) {
        fail(`waiting request ${request.requestId} has computed tokens`);
      }
    }
  }

  /**
   * generate() computes a finished row on; static-drop does not. An aborted or failed row stops in
   * either: nobody waits for it.
   */
  private computingMembers(): BatchMember[] {
    return [...this.batch.values()].filter(
      (member) => !member.request.isFinished || (!this.dropFinishedRows && member.computesAfterFinishing),
    );
  }

  private member(requestId: string): BatchMember {
    const member = this.batch.get(requestId);
    if (member === undefined) throw new Error(`request ${requestId} is not in the batch`);
    return member;
  }

  private admissionError(request: Request): string | null {
    if (!this.dropFinishedRows && request.samplingParams.structuredOutputs !== null) {
      return (
        "structured outputs are not available with --scheduling static, which computes finished rows on " +
        "as Hugging Face generate() does: use --scheduling continuous or static-drop"
      );
    }
    return promptAdmissionError(request, this.maxModelLen);
  }

  /**
   * Takes the head of the queue, as many as the batch size and the free blocks allow; without
   * dropFinishedRows each prompt is padded to the batch's longest.
   */
  private formBatch(): void {
    const numFitting = Math.floor(this.blockPool.numFreeBlocks / this.blocksPerRequest);
    const size = Math.min(this.maxBatchSize, this.waiting.length, numFitting);
    const requests: Request[] = [];
    for (let i = 0; i < size; i++) requests.push(this.waiting.shift()!);
    const longestPrompt = Math.max(0, ...requests.map((request) => request.numPromptTokens));
    for (const request of requests) {
      request.status = "RUNNING";
      request.firstScheduledTime ??= performance.now() / 1000;
      const blocks = this.blockPool.getNewBlocks(this.blocksPerRequest);
      const numPaddingTokens = this.dropFinishedRows ? 0 : longestPrompt - request.numPromptTokens;
      this.batch.set(request.requestId, new BatchMember(request, blocks, numPaddingTokens));
    }
  }

  /**
   * Once no member is left to finish, the whole reservation is freed at once; without
   * dropFinishedRows every member that finished is returned now, with all its tokens.
   */
  private endBatchIfDone(): EngineCoreOutput[] {
    const members = [...this.batch.values()];
    if (members.length === 0 || members.some(({ request }) => !request.isFinished)) return [];
    for (const { blocks } of members) this.blockPool.freeBlocks(blocks);
    this.batch.clear();
    if (this.dropFinishedRows) return [];
    // Aborted and failed members were reported (and dropped by the runner) when they ended.
    const returned = members.filter((member) => member.computesAfterFinishing);
    for (const { request } of returned) this.step.finishedRequestIds.add(request.requestId);
    return returned.map((member) => engineCoreOutput(member.request, member.unreportedTokenIds));
  }
}
