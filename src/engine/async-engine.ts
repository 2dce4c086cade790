// The engine client of the server (vLLM's AsyncLLM): the engine core runs in a Worker; this side
// tokenizes, detokenizes, applies stop strings and hands each caller an async stream of its
// request's deltas. Leaving the stream early aborts the request, so its KV blocks are freed.

import { loggerSettings } from "../logger.ts";
import { type ModelSource, resolveModel, withGenerationConfig } from "../model/load-model.ts";
import { loadModelTokenizer } from "../model/load-tokenizer.ts";
import type { ModelTokenizer } from "../model/tokenizer.ts";
import type { CoreInfo, CoreOptions, FromCore, LoadStep, ToCore } from "./core-protocol.ts";
import { type CompletionDelta, OutputProcessor } from "./output-processor.ts";
import { childRequests } from "./parallel-sampling.ts";
import { type SamplingParams, withDefaults } from "./sampling-params.ts";
import type { SchedulerStats } from "./scheduler-output.ts";
import { threadEntry } from "./thread-entry.ts";

/** One request's deltas, in order; `end` or `fail` closes it. */
class DeltaStream implements AsyncIterable<CompletionDelta> {
  private readonly queue: CompletionDelta[] = [];
  private waiting: { resolve: (r: IteratorResult<CompletionDelta>) => void; reject: (e: Error) => void } | null = null;
  private done = false;
  private error: Error | null = null;

  constructor(private readonly onCancel: () => void) {}

  push(delta: CompletionDelta): void {
    if (this.waiting) {
      this.waiting.resolve({ value: delta, done: false });
      this.waiting = null;
    } else this.queue.push(delta);
  }

  end(): void {
    this.done = true;
    this.waiting?.resolve({ value: undefined, done: true });
    this.waiting = null;
  }

  fail(error: Error): void {
    this.error = error;
    this.waiting?.reject(error);
    this.waiting = null;
  }

  [Symbol.asyncIterator](): AsyncIterator<CompletionDelta> {
    return {
      next: () => {
        const value = this.queue.shift();
        if (value) return Promise.resolve({ value, done: false });
        if (this.error) return Promise.reject(this.error);
        if (this.done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
      },
      return: () => {
        if (!this.done) this.onCancel();
        this.done = true;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

interface Parent {
  stream: DeltaStream;
  children: string[];
  /** Its children still generating. */
  unfinished: number;
}

export class AsyncEngine {
  private readonly processor: OutputProcessor;
  private readonly parents = new Map<string, Parent>();
  private readonly parentOf = new Map<string, string>();
  /** The parents' unfinished children, summed as they change rather than counted on demand. */
  private unfinishedSequences = 0;
  private readonly pendingStats = new Map<
    number,
    { resolve: (stats: SchedulerStats) => void; reject: (error: Error) => void }
  >();
  private nextStatsId = 0;
  private stopped: Error | null = null;
  private closed: (() => void) | null = null;
  /** The scheduler's figures after the latest step. */
  latestStats: SchedulerStats | null = null;
  /** Told after every engine step how many tokens it computed (for the iteration-tokens metric). */
  onStep: ((numScheduledTokens: number) => void) | null = null;

  private constructor(
    private readonly worker: Worker,
    readonly source: ModelSource,
    readonly tokenizer: ModelTokenizer,
    readonly info: CoreInfo,
  ) {
    this.processor = new OutputProcessor(tokenizer);
    worker.onmessage = (event: MessageEvent<FromCore>) => this.receive(event.data);
    worker.onerror = (event) => this.receive({ type: "failed", message: event.message });
  }

  /** `onLoaded` hears of each start-up step of the core as it finishes (serve logs them). */
  static async start(
    options: CoreOptions = {},
    onLoaded: (step: LoadStep, source: ModelSource) => void = () => {},
  ): Promise<AsyncEngine> {
    const source = await withGenerationConfig(await resolveModel(options.model, options), options.generationConfig);
    const worker = new Worker(threadEntry("engine/core-worker.ts"));
    // The core loads weights on its thread while this one loads the tokenizer.
    const ready = new Promise<CoreInfo>((resolve, reject) => {
      worker.onmessage = (event: MessageEvent<FromCore>) => {
        const message = event.data;
        if (message.type === "loaded") onLoaded(message.step, source);
        else if (message.type === "ready") resolve(message.info);
        else if (message.type === "failed") reject(new Error(message.message));
      };
      worker.onerror = (event) => reject(new Error(`engine core failed to start: ${event.message}`));
      worker.postMessage({ type: "init", options, log: loggerSettings() } satisfies ToCore);
    });
    try {
      const tokenizer = await loadModelTokenizer(source, options.tokenizer);
      return new AsyncEngine(worker, source, tokenizer, await ready);
    } catch (error) {
      worker.terminate();
      throw error;
    }
  }

  /** Streams the deltas of one request (all n samples; each delta names its sample index). */
  generate(
    requestId: string,
    promptTokenIds: readonly number[],
    params: SamplingParams,
  ): AsyncIterable<CompletionDelta> {
    if (this.stopped) throw this.stopped;
    if (this.parents.has(requestId)) throw new Error(`request id ${requestId} is already running`);
    const sampling = withDefaults(params, this.source.generationConfig);
    sampling.validateForVocab(this.source.config.vocabSize);
    const stream = new DeltaStream(() => this.abort(requestId));
    const children = childRequests(requestId, sampling);
    this.parents.set(requestId, { stream, children: children.map((c) => c.requestId), unfinished: children.length });
    this.unfinishedSequences += children.length;
    const eosTokenIds = this.source.generationConfig.eosTokenIds ?? this.source.config.eosTokenIds;
    for (const child of children) {
      this.parentOf.set(child.requestId, requestId);
      this.processor.add(child.requestId, child.index, promptTokenIds, child.params);
      this.send({
        type: "add",
        request: {
          requestId: child.requestId,
          promptTokenIds: [...promptTokenIds],
          params: child.params.toInit(),
          eosTokenIds,
        },
      });
    }
    return stream;
  }

  /** Ends a request now (all its samples); its stream closes and its blocks are freed. */
  abort(requestId: string): void {
    const parent = this.parents.get(requestId);
    if (!parent) return;
    this.send({ type: "abort", requestIds: parent.children });
    this.forget(requestId, parent);
    parent.stream.end();
  }

  /** Sequences generating or waiting to: n per request (each sample is an engine request). */
  get numUnfinishedSequences(): number {
    return this.unfinishedSequences;
  }

  /** Why the engine core stopped working (the Worker failed or was shut down), or null. */
  get failure(): Error | null {
    return this.stopped;
  }

  stats(): Promise<SchedulerStats> {
    if (this.stopped) return Promise.reject(this.stopped);
    const id = this.nextStatsId++;
    return new Promise((resolve, reject) => {
      this.pendingStats.set(id, { resolve, reject });
      this.send({ type: "stats", id });
    });
  }

  async shutdown(): Promise<void> {
    for (const id of [...this.parents.keys()]) this.abort(id);
    if (!this.stopped) {
      this.stopped = new Error("the engine is shut down");
      await new Promise<void>((resolve) => {
        this.closed = resolve;
        this.send({ type: "shutdown" });
      });
    }
    this.failPendingStats();
    this.worker.terminate();
  }

  private failPendingStats(): void {
    for (const pending of this.pendingStats.values()) pending.reject(this.stopped!);
    this.pendingStats.clear();
  }

  private send(message: ToCore): void {
    this.worker.postMessage(message);
  }

  private forget(requestId: string, parent: Parent): void {
    this.unfinishedSequences -= parent.unfinished;
    parent.unfinished = 0;
    for (const child of parent.children) {
      this.parentOf.delete(child);
      this.processor.remove(child);
    }
    this.parents.delete(requestId);
  }

  private receive(message: FromCore): void {
    switch (message.type) {
      case "outputs": {
        this.latestStats = message.stats;
        this.onStep?.(message.numScheduledTokens);
        const stoppedByString: string[] = [];
        for (const output of message.outputs) {
          const parentId = this.parentOf.get(output.requestId);
          const parent = parentId === undefined ? undefined : this.parents.get(parentId);
          const delta = parent && this.processor.process(output);
          if (!parent || !delta) continue;
          if (delta.stoppedByString) stoppedByString.push(output.requestId);
          parent.stream.push(delta);
          if (!delta.finished) continue;
          parent.unfinished--;
          this.unfinishedSequences--;
          if (parent.unfinished === 0) {
            this.forget(parentId!, parent);
            parent.stream.end();
          }
        }
        if (stoppedByString.length > 0) this.send({ type: "abort", requestIds: stoppedByString });
        break;
      }
      case "stats":
        this.pendingStats.get(message.id)?.resolve(message.stats);
        this.pendingStats.delete(message.id);
        break;
      case "failed":
        this.stopped = new Error(`engine core failed: ${message.message}`);
        for (const [id, parent] of [...this.parents]) {
          this.forget(id, parent);
          parent.stream.fail(this.stopped);
        }
        this.failPendingStats();
        break;
      case "closed":
        this.closed?.();
        break;
      case "loaded":
      case "ready":
        break;
    }
  }
}
