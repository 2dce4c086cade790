// The engine core: one step = schedule → run the model → update requests, as vLLM's
// EngineCore. It owns the KV cache (sized from a memory budget), the scheduler and the model
// runner; it never sees text.
import type { Backend } from "../backend/backend.ts";
import { dtypeBytes } from "../backend/dtype.ts";
import { logger } from "../logger.ts";
import type { EngineModel } from "../model/load-model.ts";
import { KvCacheTensors } from "../worker/kv-cache-tensors.ts";
import { type LaunchedStep, ModelRunner } from "../worker/model-runner.ts";
import { KVCacheManager } from "./kv-cache-manager.ts";
import { defaultEngineConfig, type EngineConfig } from "./options.ts";
import type { Request } from "./request.ts";
import type { SampledToken, TokenLogprobs } from "./sampler.ts";
import { Scheduler } from "./scheduler.ts";
import type { EngineScheduler } from "./scheduler-interface.ts";
import {
  type EngineCoreOutput,
  engineCoreOutput,
  type SchedulerOutput,
  type SchedulerStats,
} from "./scheduler-output.ts";
import { StaticScheduler } from "./static-scheduler.ts";
import { StepTimer } from "./step-timer.ts";
import type { GrammarVocabSource } from "./structured-output/grammar-protocol.ts";
import { StructuredOutputManager } from "./structured-output/manager.ts";

/**
 * A test hook: VLLM_TS_INJECT_STEP_FAULT=N makes the engine's N-th model step throw, as a native
 * failure would, so tests can check that the engine survives it.
 */
const INJECTED_FAULT_STEP = Number(process.env.VLLM_TS_INJECT_STEP_FAULT ?? 0);

/** On the CPU the "device" is the host: without an explicit budget, take this much at most. */
const CPU_DEFAULT_KV_BYTES = 4 * 2 ** 30;

/**
 * The default token budget of a step (--max-num-batched-tokens). A step with a prefill chunk in it
 * lasts as long as the chunk takes, and every running decode waits for it: 256 tokens of a 0.5B
 * model take about 0.6 s on two CPU cores, where a GPU computes 2048 in milliseconds.
 */
function defaultStepTokens(backend: Backend): number {
  return backend.name === "cpu" ? 256 : 2048;
}

export interface StepOutput extends EngineCoreOutput {
  /** One entry per new token when the request asked for logprobs. */
  logprobs: TokenLogprobs[] | null;
}

/** A step launched on the device (or that failed to launch), not yet collected. */
interface RunningStep {
  scheduled: SchedulerOutput;
  launched: LaunchedStep | null;
  error: unknown;
}

/** A step whose tokens came back, or its failure. */
interface CollectedStep {
  scheduled: SchedulerOutput;
  sampled: Map<string, SampledToken> | null;
  error: unknown;
}

export interface KvCacheSize {
  numBlocks: number;
  blockSize: number;
  bytes: number;
  maxTokens: number;
}

/** What the latest step ran, and where its time went: the scheduler's bookkeeping vs the model. */
export interface StepSummary {
  /** schedule() plus updateFromOutput(). */
  scheduleMs: number;
  /** Building the batch, the forward pass and sampling (launching the step and waiting for it). */
  executeMs: number;
  numScheduledTokens: number;
  numRequests: number;
  /**
   * Fraction of the KV blocks held while the step ran, as scheduled: stats() after the step no
   * longer counts what its finished requests freed at its end.
   */
  kvCacheUsage: number;
}

export class EngineCore {
  lastStep: StepSummary | null = null;
  /** Steps that ran (or tried to run) the model. */
  private numModelSteps = 0;
  readonly structuredOutputs: StructuredOutputManager;
  /** Constrained requests whose grammar is compiling: they wait here, the batch does not. */
  private readonly compiling = new Map<string, Request>();
  private readonly grammarsInFlight = new Set<Promise<void>>();
  /** With async scheduling, the step left running on the device by the last step() call. */
  private inFlight: RunningStep | null = null;
  /** Requests whose grammar failed to compile, reported by the next step. */
  private rejected: Request[] = [];
  /**
   * Logprobs of sampled tokens not reported yet, in sampling order: a static batch reports its
   * tokens only when it ends, and the samples of its finished rows, which come last, never.
   */
  private readonly unreportedLogprobs = new Map<string, TokenLogprobs[]>();

  private constructor(
    readonly config: Required<EngineConfig>,
    readonly kvCacheSize: KvCacheSize,
    private readonly kvCache: KvCacheTensors,
    private readonly scheduler: EngineScheduler,
    private readonly runner: ModelRunner,
    grammarVocab: GrammarVocabSource | null,
    vocabSize: number,
  ) {
    this.structuredOutputs = new StructuredOutputManager(grammarVocab, vocabSize);
  }

  static create(
    backend: Backend,
    model: EngineModel,
    options: Partial<EngineConfig> = {},
    /** Where grammars' vocabulary comes from (the model's tokenizer); null: no structured outputs. */
    grammarVocab: GrammarVocabSource | null = null,
  ): EngineCore {
    const merged = { ...defaultEngineConfig, ...options };
    const maxModelLen = merged.maxModelLen ?? model.config.maxPositionEmbeddings;
    if (maxModelLen > model.config.maxPositionEmbeddings) {
      throw new RangeError(
        `--max-model-len ${maxModelLen} exceeds the model's max_position_embeddings ${model.config.maxPositionEmbeddings}`,
      );
    }
    const stepTokens = merged.maxNumBatchedTokens ?? defaultStepTokens(backend);
    const sized = {
      ...merged,
      maxModelLen,
      // Without chunked prefill a whole prompt must fit one step.
      maxNumBatchedTokens: merged.enableChunkedPrefill ? stepTokens : Math.max(stepTokens, maxModelLen),
    };
    const config: Required<EngineConfig> = {
      ...sized,
      kvCacheMemory: merged.kvCacheMemory ?? kvCacheBudget(backend, model, sized),
    };
    const cacheDtype = model.weights.dtype;
    const bytesPerBlock = KvCacheTensors.bytesPerBlock(model.config, config.blockSize, cacheDtype);
    const numBlocks = Math.floor(config.kvCacheMemory / bytesPerBlock);
    if (numBlocks * config.blockSize < maxModelLen) {
      throw new RangeError(
        `a KV cache of ${(config.kvCacheMemory / 2 ** 20).toFixed(1)} MiB holds ${numBlocks * config.blockSize} tokens, ` +
          `fewer than one sequence of --max-model-len ${maxModelLen}: raise --kv-cache-memory or lower --max-model-len`,
      );
    }
    const kvCache = KvCacheTensors.allocate(backend, model.config, numBlocks, config.blockSize, cacheDtype);
    const kvCacheManager = new KVCacheManager({
      numBlocks,
      blockSize: config.blockSize,
      enablePrefixCaching: config.enablePrefixCaching,
    });
    const limits = { maxNumBatchedTokens: config.maxNumBatchedTokens, maxNumSeqs: config.maxNumSeqs, maxModelLen };
    if (config.asyncScheduling && config.scheduling !== "continuous")
      throw new RangeError(`--async-scheduling needs --scheduling continuous, not ${config.scheduling}`);
    // The CPU runs a step on a thread of its own only then: the host's work between steps is
    // hidden, but it shares the cores with the step's threads.
    backend.setAsync(config.asyncScheduling);
    const scheduler: EngineScheduler =
      config.scheduling === "continuous"
        ? new Scheduler({
            kvCacheManager,
            ...limits,
            enableChunkedPrefill: config.enableChunkedPrefill,
            asyncScheduling: config.asyncScheduling,
          })
        : new StaticScheduler({ kvCacheManager, ...limits, dropFinishedRows: config.scheduling === "static-drop" });
    const runner = new ModelRunner(backend, model, kvCache, {
      enforceEager: config.enforceEager,
      maxNumSeqs: config.maxNumSeqs,
      maxModelLen,
    });
    const size = {
      numBlocks,
      blockSize: config.blockSize,
      bytes: numBlocks * bytesPerBlock,
      maxTokens: numBlocks * config.blockSize,
    };
    return new EngineCore(config, size, kvCache, scheduler, runner, grammarVocab, model.config.vocabSize);
  }

  addRequest(request: Request): void {
    if (request.samplingParams.structuredOutputs === null) {
      this.scheduler.addRequest(request);
      return;
    }
    const id = request.requestId;
    this.compiling.set(id, request);
    const ready = this.structuredOutputs.prepare(request).then(
      () => {
        if (this.compiling.delete(id)) this.scheduler.addRequest(request);
      },
      (error: unknown) => {
        if (!this.compiling.delete(id)) return;
        request.reject(`invalid structured output: ${error instanceof Error ? error.message : String(error)}`);
        this.rejected.push(request);
      },
    );
    this.grammarsInFlight.add(ready);
    void ready.finally(() => this.grammarsInFlight.delete(ready));
  }

  abort(requestIds: Iterable<string>): void {
    const ids = [...requestIds];
    for (const id of ids) {
      this.compiling.delete(id);
      this.structuredOutputs.free(id);
      this.unreportedLogprobs.delete(id);
    }
    this.scheduler.abort(ids);
  }

  hasUnfinishedRequests(): boolean {
    return (
      this.scheduler.hasUnfinishedRequests() ||
      this.compiling.size > 0 ||
      this.rejected.length > 0 ||
      this.inFlight !== null
    );
  }

  stats(): SchedulerStats {
    return this.scheduler.stats();
  }

  /**
   * One iteration of continuous batching: schedule a step, run it, report what it produced. With
   * async scheduling the step is left running and the previous one is reported instead: the host
   * schedules step N+1 while the device computes step N, and reports step N while it computes
   * step N+1 (vLLM's async scheduling). What is left on the host between two steps is building the
   * next batch.
   */
  async step(): Promise<StepOutput[]> {
    // Nothing to run but grammars compiling: wait for them rather than spin.
    if (this.inFlight === null && !this.scheduler.hasUnfinishedRequests() && this.rejected.length === 0)
      await Promise.all(this.grammarsInFlight);
    const timer = new StepTimer();
    const previous = this.inFlight;
    this.inFlight = null;
    // A grammar takes each token before it masks the next one: constrained requests run in turns.
    const scheduled = previous !== null && !this.mayOverlap() ? null : timer.host(() => this.scheduler.schedule());
    const done = previous && timer.device(() => this.collect(previous));
    const step = scheduled && (await timer.deviceAsync(() => this.launch(scheduled)));
    const outputs = done ? timer.host(() => this.report(done)) : [];
    if (step?.launched === null) outputs.push(...this.failStep(step.scheduled, step.error));
    // An empty step is over at once: left in flight, it would keep an idle engine stepping.
    else if (step && this.mayOverlap() && step.scheduled.numScheduledTokens.size > 0) this.inFlight = step;
    else if (step) outputs.push(...timer.host(() => this.report(timer.device(() => this.collect(step)))));
    this.lastStep = {
      scheduleMs: timer.hostMs,
      executeMs: timer.deviceMs,
      numScheduledTokens: scheduled?.totalNumScheduledTokens ?? 0,
      numRequests: scheduled?.numScheduledTokens.size ?? 0,
      kvCacheUsage: scheduled?.stats.kvCacheUsage ?? this.scheduler.stats().kvCacheUsage,
    };
    return outputs;
  }

  /** Whether the step just launched may keep running while the host goes on. */
  private mayOverlap(): boolean {
    return this.config.asyncScheduling && !this.structuredOutputs.hasConstrainedRequests();
  }

  /** Enqueues a scheduled step on the device; a failure is kept for report(). */
  private async launch(scheduled: SchedulerOutput): Promise<RunningStep> {
    try {
      if (++this.numModelSteps === INJECTED_FAULT_STEP) throw new Error("a fault injected for testing");
      const launched = await this.runner.launch(scheduled, (ids) => this.structuredOutputs.bitmask(ids));
      return { scheduled, launched, error: null };
    } catch (error) {
      return { scheduled, launched: null, error };
    }
  }

  /** Waits for a launched step's tokens. */
  private collect(step: RunningStep): CollectedStep {
    if (step.launched === null) return { scheduled: step.scheduled, sampled: null, error: step.error };
    try {
      return { scheduled: step.scheduled, sampled: step.launched.collect(), error: null };
    } catch (error) {
      return { scheduled: step.scheduled, sampled: null, error };
    }
  }

  /** A finished step's tokens into the grammars and the scheduler; the outputs to report. */
  private report(step: CollectedStep): StepOutput[] {
    const { scheduled, sampled } = step;
    if (sampled === null) return this.failStep(scheduled, step.error);
    this.structuredOutputs.accept(sampled);
    for (const [id, { logprobs }] of sampled) {
      if (logprobs === null) continue;
      const queue = this.unreportedLogprobs.get(id) ?? [];
      queue.push(logprobs);
      this.unreportedLogprobs.set(id, queue);
    }
    const tokenIds = new Map([...sampled].map(([id, token]) => [id, [token.tokenId]]));
    const outputs = this.scheduler.updateFromOutput(scheduled, tokenIds);
    for (const output of outputs) if (output.finished) this.structuredOutputs.free(output.requestId);
    outputs.push(...this.rejected.map((request) => engineCoreOutput(request, [])));
    this.rejected = [];
    return outputs.map((output) => ({ ...output, logprobs: this.takeLogprobs(output) }));
  }

  /** The logprobs of an output's new tokens (null unless asked for); a finished request's rest goes. */
  private takeLogprobs(output: EngineCoreOutput): TokenLogprobs[] | null {
    const queue = this.unreportedLogprobs.get(output.requestId);
    if (output.finished) this.unreportedLogprobs.delete(output.requestId);
    if (queue === undefined || output.newTokenIds.length === 0) return null;
    return queue.splice(0, output.newTokenIds.length);
  }

  /**
   * A step that threw fails the requests it ran (their blocks freed, each with the error, a 500 for
   * its client) and no others: the engine goes on with the next step. vLLM's engine would die.
   * With async scheduling, the step scheduled after it may still run them: they are no longer
   * live when it reports, so nothing of theirs is reported twice.
   */
  private failStep(scheduled: SchedulerOutput, error: unknown): StepOutput[] {
    const ids = [...scheduled.numScheduledTokens.keys()];
    const reason = error instanceof Error ? error.message : String(error);
    logger.error(
      `a step of ${ids.length} request(s) failed; they end with an error and the engine goes on: ${error instanceof Error ? (error.stack ?? reason) : reason}`,
    );
    for (const id of ids) {
      this.structuredOutputs.free(id);
      this.unreportedLogprobs.delete(id);
    }
    const failed = this.scheduler.abort(ids, `the engine failed while running this request: ${reason}`);
    // The step ends as any other (nothing sampled; the failed requests are gone), with the
    // admission rejections it owes.
    const outputs = this.scheduler.updateFromOutput(scheduled, new Map());
    outputs.push(...[...failed, ...this.rejected].map((request) => engineCoreOutput(request, [])));
    this.rejected = [];
    return outputs.map((output) => ({ ...output, logprobs: null }));
  }

  close(): void {
    this.structuredOutputs.close();
    this.runner.free();
    this.kvCache.free();
  }
}

/**
 * vLLM's rule: the engine may use gpuMemoryUtilization of the device's memory in all; what the
 * weights already took and the activations of the largest step will take are not for KV. On the
 * CPU the budget is also capped, since the host's memory serves everything else too.
 */
function kvCacheBudget(
  backend: Backend,
  model: EngineModel,
  config: EngineConfig & Pick<Required<EngineConfig>, "maxNumBatchedTokens">,
): number {
  const { freeBytes, totalBytes } = backend.memoryInfo();
  const c = model.config;
  const activationsPerToken =
    (3 * c.hiddenSize + (c.numHeads + 2 * c.numKvHeads) * c.headDim + c.numHeads * c.headDim + 3 * c.intermediateSize) *
    dtypeBytes(model.actDtype);
  const activations =
    config.maxNumBatchedTokens * activationsPerToken + config.maxNumSeqs * c.vocabSize * dtypeBytes(model.actDtype);
  const budget = config.gpuMemoryUtilization * totalBytes - (totalBytes - freeBytes) - activations;
  return Math.max(0, backend.name === "cpu" ? Math.min(budget, CPU_DEFAULT_KV_BYTES) : budget);
}
