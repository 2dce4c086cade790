// One HTTP request's engine work: one engine request per prompt (n samples each), their deltas
// merged into a single stream of choices in arrival order. Admission control, abort on client
// disconnect and the latency metrics live here, so both endpoints share them.
import type { CompletionDelta } from "../engine/output-processor.ts";
import type { SamplingParams } from "../engine/sampling-params.ts";
import type { ModelContext } from "./context.ts";
import { ApiError, toApiError } from "./errors.ts";
import { logRequest, type PromptAsGiven } from "./request-log.ts";

export interface PromptInput {
  tokenIds: number[];
  params: SamplingParams;
  /** What --log-prompts logs: the prompt as the client gave it (chat: the rendered conversation). */
  asGiven?: PromptAsGiven;
}

export interface ChoiceDelta {
  /** OpenAI's choice index: promptIndex * n + sample index. */
  index: number;
  promptIndex: number;
  delta: CompletionDelta;
}

/** One sequence's times (performance.now() ms) and tokens so far. */
interface SequenceTiming {
  firstTokenAt: number | null;
  lastAt: number;
  numTokens: number;
  /** Seconds it waited in the engine's queue, once the engine says. */
  queueSeconds: number | null;
}

/**
 * A request that alone asks for more sequences than the server ever holds could never be admitted:
 * a 400, checked before its prompts are tokenized.
 */
export function checkSequenceCount(context: ModelContext, numSequences: number): void {
  const { maxPendingRequests } = context;
  if (numSequences <= maxPendingRequests) return;
  throw new ApiError(
    400,
    `this request asks for ${numSequences} sequences (prompts × n), more than this server ever holds at once ` +
      `(--max-pending-requests ${maxPendingRequests}); split it`,
  );
}

export class Generation implements AsyncIterable<ChoiceDelta> {
  private readonly arrivedAt = performance.now();
  private readonly timings = new Map<number, SequenceTiming>();
  private readonly finishReasons: string[] = [];
  private clientGone = false;
  private numUnfinished: number;

  private constructor(
    private readonly context: ModelContext,
    /** The HTTP request's id, which its log line names. */
    private readonly requestId: string,
    private readonly requestIds: string[],
    private readonly streams: AsyncIterable<CompletionDelta>[],
    readonly n: number,
    /** Each prompt's token count, for the per-request metrics. */
    private readonly promptLengths: readonly number[],
    /** Each prompt as given (its token ids when the caller gave no other form), for --log-prompts. */
    private readonly promptsAsGiven: readonly PromptAsGiven[],
  ) {
    this.numUnfinished = streams.length * n;
  }

  /**
   * Submits every prompt, or none: a prompt the engine refuses withdraws those before it. Admission
   * counts sequences, n per prompt, since each is an engine request of its own.
   */
  static start(context: ModelContext, requestId: string, prompts: readonly PromptInput[]): Generation {
    const { engine, maxPendingRequests } = context;
    const numSequences = prompts.reduce((sum, prompt) => sum + prompt.params.n, 0);
    checkSequenceCount(context, numSequences);
    if (engine.numUnfinishedSequences + numSequences > maxPendingRequests) {
      throw new ApiError(
        503,
        `\`${context.servedModelName}\` is at capacity (${maxPendingRequests} pending sequences); retry later`,
      );
    }
    const requestIds = prompts.length === 1 ? [requestId] : prompts.map((_, i) => `${requestId}-${i}`);
    const streams: AsyncIterable<CompletionDelta>[] = [];
    try {
      for (const [i, prompt] of prompts.entries())
        streams.push(engine.generate(requestIds[i]!, prompt.tokenIds, prompt.params));
    } catch (error) {
      for (const id of requestIds.slice(0, streams.length)) engine.abort(id);
      throw error;
    }
    for (const prompt of prompts) context.metrics.recordPrompt(prompt.tokenIds.length);
    const promptLengths = prompts.map((prompt) => prompt.tokenIds.length);
    const asGiven = prompts.map((prompt) => prompt.asGiven ?? prompt.tokenIds);
    return new Generation(context, requestId, requestIds, streams, prompts[0]!.params.n, promptLengths, asGiven);
  }

  /** Frees the engine's work at once (the client is gone); the stream then ends. */
  abort(): void {
    this.clientGone = true;
    for (const id of this.requestIds) this.context.engine.abort(id);
  }

  /** After the stream ends: throws if it ended early, aborted by shutdown (or a client gone). */
  checkComplete(): void {
    if (this.numUnfinished > 0)
      throw new ApiError(503, "the request was aborted before it finished: the server is shutting down");
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ChoiceDelta> {
    const iterators = this.streams.map((stream) => stream[Symbol.asyncIterator]());
    const next = (promptIndex: number) => iterators[promptIndex]!.next().then((result) => ({ promptIndex, result }));
    const pending = new Map(iterators.map((_, i) => [i, next(i)]));
    let status = 200;
    try {
      while (pending.size > 0) {
        const { promptIndex, result } = await Promise.race(pending.values());
        if (result.done) {
          pending.delete(promptIndex);
          continue;
        }
        pending.set(promptIndex, next(promptIndex));
        const delta = result.value;
        // A request the engine failed is the server's fault, one it rejected the client's.
        if (delta.error) throw new ApiError(delta.output.finishReason === "error" ? 500 : 400, delta.error);
        const index = promptIndex * this.n + delta.output.index;
        this.record(index, promptIndex, delta);
        yield { index, promptIndex, delta };
      }
    } catch (error) {
      status = toApiError(error).status;
      throw error;
    } finally {
      // 499: the client left before the end (nginx's code); 503: the server is shutting down.
      if (pending.size > 0) this.abort();
      if (status === 200 && this.clientGone) status = 499;
      else if (status === 200 && this.numUnfinished > 0) status = 503;
      if (this.context.logRequests) this.logCompletion(status);
    }
  }

  private logCompletion(status: number): void {
    logRequest({
      requestId: this.requestId,
      model: this.context.servedModelName,
      promptTokens: this.promptLengths.reduce((sum, length) => sum + length, 0),
      outputTokens: [...this.timings.values()].reduce((sum, timing) => sum + timing.numTokens, 0),
      finishReason: [...new Set(this.finishReasons)].join(",") || "none",
      status,
      seconds: Math.round(performance.now() - this.arrivedAt) / 1000,
      prompts: this.context.logPrompts ? this.promptsAsGiven : null,
    });
  }

  private record(index: number, promptIndex: number, delta: CompletionDelta): void {
    const now = performance.now();
    const timing = this.timings.get(index) ?? {
      firstTokenAt: null,
      lastAt: this.arrivedAt,
      numTokens: 0,
      queueSeconds: null,
    };
    timing.queueSeconds ??= delta.queueSeconds;
    if (delta.tokenIds.length > 0) {
      const isFirst = timing.firstTokenAt === null;
      this.context.metrics.recordTokens(delta.tokenIds.length, (now - timing.lastAt) / 1000, isFirst);
      timing.firstTokenAt ??= now;
      timing.lastAt = now;
      timing.numTokens += delta.tokenIds.length;
    }
    this.timings.set(index, timing);
    if (delta.finished) {
      this.numUnfinished--;
      this.finishReasons.push(delta.output.finishReason ?? "stop");
      this.context.metrics.recordFinished({
        finishReason: delta.output.finishReason ?? "stop",
        arrivedAt: this.arrivedAt,
        scheduledAt: this.arrivedAt + 1000 * (timing.queueSeconds ?? 0),
        firstTokenAt: timing.firstTokenAt,
        lastTokenAt: timing.lastAt,
        finishedAt: now,
        promptTokens: this.promptLengths[promptIndex]!,
        generationTokens: timing.numTokens,
      });
    }
  }
}
