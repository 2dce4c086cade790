// The in-process engine the offline benchmarks drive: an EngineCore per run over a model loaded
// once (openModelOnDevice), and the step loop that times every request (end to end, first token)
// and samples the scheduler's statistics after each step.

import type { CoreOptions } from "../../engine/core-protocol.ts";
import type { EngineCore } from "../../engine/engine-core.ts";
import { ENGINE_OPTIONS, type EngineConfig, pickOptions } from "../../engine/options.ts";
import { Request } from "../../engine/request.ts";
import { SamplingParams } from "../../engine/sampling-params.ts";
import type { StructuredOutputs } from "../../engine/structured-output/structured-outputs.ts";
import { Progress, type Summary, summarize } from "../report.ts";
import type { BenchRequest } from "../workload.ts";

/** The engine's part of the command-line options. */
export function engineConfig(options: CoreOptions): Partial<EngineConfig> {
  return pickOptions(ENGINE_OPTIONS, options);
}

export interface RunResult {
  numRequests: number;
  /** Requests the engine rejected (prompt longer than the context, say); not counted in the tokens, latencies or rates. */
  rejectedRequests: number;
  promptTokens: number;
  outputTokens: number;
  elapsedSeconds: number;
  /**
   * CPU time of the whole process (every thread) over the run: the work it did, which the
   * machine's other load hardly changes, unlike the elapsed time.
   */
  cpuSeconds: number;
  steps: number;
  requestsPerSecond: number;
  totalTokensPerSecond: number;
  outputTokensPerSecond: number;
  /** Seconds from the start of the run, every request arriving at once. */
  latency: Summary;
  timeToFirstToken: Summary;
  /** Over the run, weighted by the slots allocated at each step. */
  kvWasteRatio: number;
  maxConcurrentRequests: number;
  prefixCacheHitRate: number;
  numPreemptions: number;
  schedulerMsPerStep: number;
  /** The scheduler's share of the step time (the rest is the model). */
  schedulerShareOfStep: number;
}

export interface RunOptions {
  /** Show the progress line (when stderr is a terminal). */
  progress?: boolean;
  /** Filled with each request's times and the KV use after each step, for `--plot`. */
  timeline?: RunTimeline;
  /**
   * Every request follows this grammar and stops when it completes (or at its output length),
   * rather than ignoring EOS: a grammar allows nothing after its end.
   */
  structuredOutputs?: StructuredOutputs;
  /** The model's EOS token ids, where its grammar ends a constrained request. */
  eosTokenIds?: readonly number[];
}

/** Seconds from the start of the run; null while the event has not happened. */
export interface RequestTimes {
  arrival: number;
  /** Start of the first step that scheduled it. */
  admitted: number | null;
  /** Its first token reached the client. */
  firstToken: number | null;
  /** End of the step that generated its last token; a static batch returns it only when it ends. */
  generated: number | null;
  /** It was returned, whole. */
  finished: number | null;
}

/** One step's KV cache: what it held while it ran, what held tokens once it ended. */
export interface KvSample {
  /** The step's start and end. */
  started: number;
  seconds: number;
  /** Slots allocated (or reserved) while the step ran, as it was scheduled. */
  allocatedSlots: number;
  /** Slots holding a token at the step's end. */
  tokensStored: number;
}

export interface RunTimeline {
  requests: RequestTimes[];
  kv: KvSample[];
  /** KV cache capacity in token slots. */
  maxSlots: number;
}

export const emptyTimeline = (): RunTimeline => ({ requests: [], kv: [], maxSlots: 0 });

/** Adds every request at once and steps the engine until all are done. */
export async function runRequests(
  core: EngineCore,
  requests: readonly BenchRequest[],
  label: string,
  options: RunOptions = {},
): Promise<RunResult> {
  const progress = new Progress(label, requests.length, options.progress ?? true);
  const started = performance.now();
  const cpuAtStart = process.cpuUsage();
  const firstToken = new Map<string, number>();
  const finished = new Map<string, number>();
  const rejected = new Set<number>();
  const timeline = options.timeline;
  if (timeline) timeline.maxSlots = core.kvCacheSize.maxTokens;
  // Requests not yet scheduled, and requests not yet done generating, watched only for a timeline.
  const waiting = new Map<Request, RequestTimes>();
  const generating = new Map<Request, RequestTimes>();
  const secondsNow = () => (performance.now() - started) / 1000;
  requests.forEach((request, index) => {
    const engineRequest = new Request({
      requestId: `${label}-${index}`,
      promptTokenIds: request.promptTokenIds,
      eosTokenIds: options.eosTokenIds,
      samplingParams: new SamplingParams({
        temperature: 0,
        maxTokens: request.outputLen,
        ignoreEos: options.structuredOutputs === undefined,
        structuredOutputs: options.structuredOutputs ?? null,
      }),
    });
    core.addRequest(engineRequest);
    if (timeline) {
      const times: RequestTimes = {
        arrival: secondsNow(),
        admitted: null,
        firstToken: null,
        generated: null,
        finished: null,
      };
      timeline.requests.push(times);
      waiting.set(engineRequest, times);
      generating.set(engineRequest, times);
    }
  });
  let steps = 0;
  let outputTokens = 0;
  let wasteWeighted = 0;
  let slotsWeighted = 0;
  let maxRunning = 0;
  let scheduleMs = 0;
  let executeMs = 0;
  while (core.hasUnfinishedRequests()) {
    const stepStarted = secondsNow();
    const outputs = await core.step();
    steps++;
    const now = secondsNow();
    const stats = core.stats();
    const step = core.lastStep!;
    if (timeline) {
      const { numBlocks, blockSize } = core.kvCacheSize;
      timeline.kv.push({
        started: stepStarted,
        seconds: now,
        allocatedSlots: Math.round(step.kvCacheUsage * numBlocks) * blockSize,
        tokensStored: stats.tokensStored,
      });
      for (const [request, times] of waiting) {
        if (request.status === "WAITING") continue;
        times.admitted = stepStarted;
        waiting.delete(request);
      }
      for (const [request, times] of generating) {
        if (!request.isFinished) continue;
        times.generated = now;
        generating.delete(request);
      }
    }
    wasteWeighted += stats.wasteRatio * stats.allocatedSlots;
    slotsWeighted += stats.allocatedSlots;
    maxRunning = Math.max(maxRunning, stats.numRunning);
    scheduleMs += step.scheduleMs;
    executeMs += step.executeMs;
    for (const output of outputs) {
      outputTokens += output.newTokenIds.length;
      const index = Number(output.requestId.slice(label.length + 1));
      if (output.newTokenIds.length > 0 && !firstToken.has(output.requestId)) {
        firstToken.set(output.requestId, now);
        if (timeline) timeline.requests[index]!.firstToken = now;
      }
      if (output.finishReason === "rejected") rejected.add(index);
      else if (output.finished) {
        finished.set(output.requestId, now);
        if (timeline) timeline.requests[index]!.finished = now;
      }
    }
    progress.update(finished.size + rejected.size);
  }
  progress.done();
  const elapsedSeconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuAtStart);
  const stats = core.stats();
  const promptTokens = requests.reduce(
    (sum, request, index) => sum + (rejected.has(index) ? 0 : request.promptTokenIds.length),
    0,
  );
  return {
    numRequests: requests.length,
    rejectedRequests: rejected.size,
    promptTokens,
    outputTokens,
    elapsedSeconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    steps,
    requestsPerSecond: finished.size / elapsedSeconds,
    totalTokensPerSecond: (promptTokens + outputTokens) / elapsedSeconds,
    outputTokensPerSecond: outputTokens / elapsedSeconds,
    latency: summarize([...finished.values()]),
    timeToFirstToken: summarize([...firstToken.values()]),
    kvWasteRatio: slotsWeighted > 0 ? wasteWeighted / slotsWeighted : 0,
    maxConcurrentRequests: maxRunning,
    prefixCacheHitRate: stats.prefixCacheHitRate,
    numPreemptions: stats.numPreemptions,
    schedulerMsPerStep: steps > 0 ? scheduleMs / steps : 0,
    schedulerShareOfStep: scheduleMs + executeMs > 0 ? scheduleMs / (scheduleMs + executeMs) : 0,
  };
}
