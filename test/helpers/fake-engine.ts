// A stand-in for the model runner and the engine core's step loop, for scheduler tests. The fake
// runner keeps its own per-request state from the scheduler outputs alone, as a real runner does,
// writes each computed token id into a simulated paged KV cache through the block table, and
// "samples" from what it reads back there, so a wrong block table or a bad prefix hit changes the
// tokens. The fake model is greedy: the next token is a fixed function of the last three. Padding
// rows (static batching's) are counted, and write nothing.

import type { KVCacheManager } from "../../src/engine/kv-cache-manager.ts";
import { RequestGenerator } from "../../src/engine/random.ts";
import { Request } from "../../src/engine/request.ts";
import { SamplingParams, type SamplingParamsInit } from "../../src/engine/sampling-params.ts";
import type { EngineScheduler } from "../../src/engine/scheduler-interface.ts";
import type { EngineCoreOutput, SchedulerOutput, SchedulerStats } from "../../src/engine/scheduler-output.ts";

export const VOCAB_SIZE = 1000;

/** The fake model: (sum of the last three tokens * 31 + 7) mod 1000. */
export function fakeNextToken(lastTokens: readonly number[]): number {
  const sum = lastTokens.slice(-3).reduce((total, tokenId) => total + tokenId, 0);
  return (sum * 31 + 7) % VOCAB_SIZE;
}

/** A seeded generator (the engine's own), so that a failing workload can be replayed. */
export function makeRng(seed: number): () => number {
  const generator = new RequestGenerator(seed);
  return () => generator.nextFloat();
}

export function randomTokens(random: () => number, length: number): number[] {
  return Array.from({ length }, () => Math.floor(random() * VOCAB_SIZE));
}

export interface TestRequestInit extends Partial<SamplingParamsInit> {
  eosTokenIds?: number[];
}

export function makeRequest(requestId: string, prompt: readonly number[], init: TestRequestInit = {}): Request {
  const { eosTokenIds, ...params } = init;
  const samplingParams = new SamplingParams({ temperature: 0, ...params });
  return new Request({ requestId, promptTokenIds: prompt, samplingParams, eosTokenIds: eosTokenIds ?? [] });
}

/** The tokens a request gets when run alone, without any scheduler: the expected output. */
export function referenceOutput(prompt: readonly number[], init: TestRequestInit, maxModelLen: number): number[] {
  const request = makeRequest("reference", prompt, init);
  do request.appendOutputToken(fakeNextToken(request.allTokenIds));
  while (!request.checkStop(maxModelLen));
  return request.outputTokenIds;
}

interface RunnerRequestState {
  tokenIds: number[];
  blockIds: number[];
}

/** The model runner's side: per-request state and a simulated paged KV cache of token ids. */
export class FakeRunner {
  /** Padding tokens computed, by the request they pad. */
  readonly paddingTokens = new Map<string, number>();
  private readonly states = new Map<string, RunnerRequestState>();
  private readonly slots: Int32Array;

  constructor(
    numBlocks: number,
    private readonly blockSize: number,
  ) {
    this.slots = new Int32Array(numBlocks * blockSize).fill(-1);
  }

  execute(output: SchedulerOutput): Map<string, number[]> {
    for (const requestId of [...output.preemptedRequestIds, ...output.finishedRequestIds]) {
      this.states.delete(requestId);
    }
    const computed: { requestId: string; end: number; samplesNextToken: boolean }[] = [];
    for (const data of output.scheduledNewRequests) {
      const state = { tokenIds: [...data.tokenIds], blockIds: [...data.blockIds] };
      this.states.set(data.requestId, state);
      computed.push({ ...data, end: this.write(state, data.numComputedTokens, output, data.requestId) });
    }
    for (const data of output.scheduledCachedRequests) {
      const state = this.states.get(data.requestId);
      if (state === undefined) throw new Error(`runner: no state for cached request ${data.requestId}`);
      state.blockIds.push(...data.newBlockIds);
      const start = data.numComputedTokens;
      const known = state.tokenIds.slice(start, start + data.newTokenIds.length);
      if (known.join() !== data.newTokenIds.join()) {
        throw new Error(`runner: ${data.requestId} given tokens ${data.newTokenIds}, runner has ${known}`);
      }
      computed.push({ ...data, end: this.write(state, start, output, data.requestId) });
    }
    for (const { requestId, numComputedTokens, numTokens } of output.paddingRows) {
      if (!this.states.has(requestId)) throw new Error(`runner: padding of ${requestId}, whose block table it lacks`);
      const computed = this.paddingTokens.get(requestId) ?? 0;
      if (numComputedTokens !== computed) {
        throw new Error(`runner: padding of ${requestId} starts at ${numComputedTokens}, ${computed} computed`);
      }
      this.paddingTokens.set(requestId, computed + numTokens);
    }
    // Every write of the step lands before any read, as a forward writes K/V before attention.
    const sampled = new Map<string, number[]>();
    for (const { requestId, end, samplesNextToken } of computed) {
      const state = this.states.get(requestId)!;
      if (samplesNextToken !== (end === state.tokenIds.length)) {
        throw new Error(`runner: ${requestId} samplesNextToken is ${samplesNextToken} at ${end} tokens`);
      }
      if (!samplesNextToken) continue;
      const lastTokens: number[] = [];
      for (let position = Math.max(0, end - 3); position < end; position++) {
        lastTokens.push(this.slots[this.slot(state, position)]!);
      }
      const tokenId = fakeNextToken(lastTokens);
      state.tokenIds.push(tokenId);
      sampled.set(requestId, [tokenId]);
    }
    return sampled;
  }

  /** Writes the step's tokens of one request into its slots; returns its computed length after. */
  private write(state: RunnerRequestState, start: number, output: SchedulerOutput, requestId: string): number {
    const end = start + output.numScheduledTokens.get(requestId)!;
    if (end > state.tokenIds.length) throw new Error(`runner: ${requestId} computes past its tokens`);
    for (let position = start; position < end; position++) {
      this.slots[this.slot(state, position)] = state.tokenIds[position]!;
    }
    return end;
  }

  private slot(state: RunnerRequestState, position: number): number {
    const blockId = state.blockIds[Math.floor(position / this.blockSize)];
    if (blockId === undefined) throw new Error(`runner: position ${position} has no block`);
    return blockId * this.blockSize + (position % this.blockSize);
  }
}

export interface FakeEngineOptions {
  scheduler: EngineScheduler;
  kvCacheManager: KVCacheManager;
  maxNumBatchedTokens: number;
  maxNumSeqs: number;
  /**
   * The engine core's async scheduling: each step schedules and runs step N+1, then reports step
   * N (the runner has N's tokens; the scheduler learns them after scheduling N+1).
   */
  asyncScheduling?: boolean;
}

export interface StepRecord {
  output: SchedulerOutput;
  outputs: EngineCoreOutput[];
  /** Stats after the step's update. */
  stats: SchedulerStats;
}

/**
 * The step loop (schedule → execute → update) with the checks every scheduler test wants after
 * every step: the scheduler's invariants and the step's token budget and sequence cap.
 */
export class FakeEngine {
  readonly scheduler: EngineScheduler;
  readonly runner: FakeRunner;
  readonly steps: StepRecord[] = [];
  /** Output tokens and final output of every request seen, by id. */
  readonly tokens = new Map<string, number[]>();
  readonly finished = new Map<string, EngineCoreOutput>();
  private readonly maxNumBatchedTokens: number;
  private readonly maxNumSeqs: number;
  private readonly asyncScheduling: boolean;
  /** With async scheduling, the step run but not yet reported to the scheduler. */
  private inFlight: { output: SchedulerOutput; sampled: Map<string, number[]> } | null = null;

  constructor(options: FakeEngineOptions) {
    this.scheduler = options.scheduler;
    this.runner = new FakeRunner(options.kvCacheManager.numBlocks, options.kvCacheManager.blockSize);
    this.maxNumBatchedTokens = options.maxNumBatchedTokens;
    this.maxNumSeqs = options.maxNumSeqs;
    this.asyncScheduling = options.asyncScheduling ?? false;
  }

  add(...requests: Request[]): void {
    for (const request of requests) this.scheduler.addRequest(request);
  }

  /** One step; with async scheduling, the outputs are those of the step before. */
  step(): StepRecord {
    const output = this.scheduler.schedule();
    this.scheduler.checkInvariants();
    this.checkBudgets(output);
    const sampled = this.runner.execute(output);
    const previous = this.inFlight;
    this.inFlight = null;
    const outputs = previous ? this.scheduler.updateFromOutput(previous.output, previous.sampled) : [];
    // As the engine core: an empty step is reported at once, or an idle engine would keep stepping.
    if (this.asyncScheduling && output.numScheduledTokens.size > 0) this.inFlight = { output, sampled };
    else outputs.push(...this.scheduler.updateFromOutput(output, sampled));
    this.scheduler.checkInvariants();
    for (const result of outputs) {
      const tokens = this.tokens.get(result.requestId) ?? [];
      tokens.push(...result.newTokenIds);
      this.tokens.set(result.requestId, tokens);
      if (result.finished) this.finished.set(result.requestId, result);
    }
    const record = { output, outputs, stats: this.scheduler.stats() };
    this.steps.push(record);
    return record;
  }

  /** Steps until no request is left; returns the number of steps taken. */
  runUntilIdle(maxSteps = 10_000): number {
    let numSteps = 0;
    while (this.scheduler.hasUnfinishedRequests() || this.inFlight !== null) {
      if (++numSteps > maxSteps) throw new Error(`not idle after ${maxSteps} steps`);
      this.step();
    }
    return numSteps;
  }

  /** 1 - (tokens stored / slots allocated), summed over the steps so far. */
  aggregateWasteRatio(): number {
    let stored = 0;
    let allocated = 0;
    for (const { stats } of this.steps) {
      stored += stats.tokensStored;
      allocated += stats.allocatedSlots;
    }
    return allocated === 0 ? 0 : 1 - stored / allocated;
  }

  private checkBudgets(output: SchedulerOutput): void {
    let total = 0;
    for (const numTokens of output.numScheduledTokens.values()) {
      if (!(numTokens >= 1)) throw new Error(`a request was scheduled for ${numTokens} tokens`);
      total += numTokens;
    }
    const numRecords = output.scheduledNewRequests.length + output.scheduledCachedRequests.length;
    if (total !== output.totalNumScheduledTokens || numRecords !== output.numScheduledTokens.size) {
      throw new Error(`inconsistent scheduler output: ${total} tokens, ${numRecords} records`);
    }
    let padding = 0;
    for (const { numTokens } of output.paddingRows) {
      if (!(numTokens >= 1)) throw new Error(`a padding row of ${numTokens} tokens`);
      padding += numTokens;
    }
    if (total + padding > this.maxNumBatchedTokens) {
      throw new Error(`${total} tokens and ${padding} of padding scheduled, budget ${this.maxNumBatchedTokens}`);
    }
    if (output.numScheduledTokens.size > this.maxNumSeqs) {
      throw new Error(`${output.numScheduledTokens.size} requests scheduled, cap ${this.maxNumSeqs}`);
    }
  }
}
