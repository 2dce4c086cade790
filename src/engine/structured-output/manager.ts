// The engine core's structured outputs (vLLM's StructuredOutputManager): the handle on the grammar
// thread (grammar-worker.ts), which compiles the grammars and holds one matcher per constrained
// request. The engine asks for a step's masks before its forward pass and collects them after,
// so they are filled while the model runs; sampled tokens are sent on without waiting.
import { logger } from "../../logger.ts";
import type { Request } from "../request.ts";
import { threadEntry } from "../thread-entry.ts";
import type { GrammarSpec } from "./grammar-matchers.ts";
import type { FromGrammar, GrammarVocabSource, ToGrammar } from "./grammar-protocol.ts";
import { grammarSource } from "./structured-outputs.ts";
import { bitmaskWords, type TokenBitmask } from "./token-bitmask.ts";

interface PendingAdd {
  resolve: () => void;
  reject: (error: Error) => void;
  /** Freed (aborted) before its grammar was ready. */
  freed: boolean;
}

export class StructuredOutputManager {
  private thread: Worker | null = null;
  /** Requests with a matcher in the thread. */
  private readonly constrained = new Set<string>();
  private readonly adding = new Map<string, PendingAdd>();
  /** Callers waiting for masks, in the order they asked. */
  private readonly maskWaiters: ((masks: TokenBitmask | null) => void)[] = [];
  /** Milliseconds the grammar thread spent filling masks, and masks filled, since the engine started. */
  readonly maskTime = { totalMs: 0, count: 0 };

  constructor(
    /** Where the grammar thread loads the vocabulary from; null: this engine has no tokenizer. */
    private readonly vocab: GrammarVocabSource | null,
    private readonly vocabSize: number,
  ) {}

  /** Resolves once the request's grammar is compiled and its matcher made. */
  prepare(request: Request): Promise<void> {
    if (this.vocab === null) {
      return Promise.reject(new Error("this engine was started without a tokenizer, which grammars need"));
    }
    const outputs = request.samplingParams.structuredOutputs!;
    let spec: GrammarSpec;
    try {
      spec = {
        source: grammarSource(outputs),
        // The grammar may end only where the request itself would stop: EOS or a stop token id.
        stopTokenIds: [...new Set([...request.eosTokenIds, ...request.samplingParams.stopTokenIds])],
        startAfterTokenIds: outputs.startAfterTokenIds ?? [],
      };
    } catch (error) {
      return Promise.reject(error);
    }
    const requestId = request.requestId;
    return new Promise((resolve, reject) => {
      this.adding.set(requestId, { resolve, reject, freed: false });
      this.post({ type: "add", requestId, spec });
    });
  }

  /** Whether any request has a compiled grammar (one still compiling is not scheduled yet). */
  hasConstrainedRequests(): boolean {
    return this.constrained.size > 0;
  }

  /**
   * Asks for the masks of a step's sampled rows (in order); null without a round trip when none
   * of them has a grammar.
   */
  bitmask(requestIds: readonly string[]): Promise<TokenBitmask | null> | null {
    if (!requestIds.some((id) => this.constrained.has(id))) return null;
    return new Promise((resolve) => {
      this.maskWaiters.push(resolve);
      this.post({ type: "masks", requestIds: [...requestIds] });
    });
  }

  /** The step's sampled tokens, to advance the grammars (a refusal is reported by the thread). */
  accept(sampled: ReadonlyMap<string, { tokenId: number }>): void {
    // Most steps of most servers have no constrained request: nothing to copy then.
    if (this.constrained.size === 0) return;
    const tokens: [string, number][] = [];
    for (const [id, token] of sampled) if (this.constrained.has(id)) tokens.push([id, token.tokenId]);
    if (tokens.length > 0) this.post({ type: "accept", tokens });
  }

  free(requestId: string): void {
    const adding = this.adding.get(requestId);
    if (adding) adding.freed = true;
    else if (!this.constrained.delete(requestId)) return;
    this.post({ type: "free", requestIds: [requestId] });
  }

  close(): void {
    this.thread?.terminate();
    this.thread = null;
  }

  private post(message: ToGrammar): void {
    this.ensureThread().postMessage(message);
    this.holdWhileWaiting();
  }

  /**
   * An engine's exit must not wait for an idle grammar thread, but while an answer is awaited the
   * thread is all that keeps the process (say, an offline benchmark) alive.
   */
  private holdWhileWaiting(): void {
    if (this.adding.size > 0 || this.maskWaiters.length > 0) this.thread?.ref();
    else this.thread?.unref();
  }

  private ensureThread(): Worker {
    if (this.thread) return this.thread;
    const thread = new Worker(threadEntry("engine/structured-output/grammar-worker.ts"));
    thread.onmessage = (event: MessageEvent<FromGrammar>) => this.receive(event.data);
    thread.onerror = (event) => this.threadFailed(event.message);
    thread.postMessage({ type: "init", vocab: this.vocab!, vocabSize: this.vocabSize } satisfies ToGrammar);
    this.thread = thread;
    return thread;
  }

  private receive(message: FromGrammar): void {
    this.handle(message);
    this.holdWhileWaiting();
  }

  private handle(message: FromGrammar): void {
    switch (message.type) {
      case "added": {
        const adding = this.adding.get(message.requestId);
        if (!adding) return;
        this.adding.delete(message.requestId);
        if (message.error !== null) adding.reject(new Error(message.error));
        else {
          if (!adding.freed) this.constrained.add(message.requestId);
          adding.resolve();
        }
        return;
      }
      case "masks": {
        const { masks, fillMs } = message;
        this.maskTime.totalMs += fillMs;
        this.maskTime.count += masks?.rowIndices.length ?? 0;
        const bitmask = masks && { ...masks, wordsPerRow: bitmaskWords(this.vocabSize) };
        this.maskWaiters.shift()?.(bitmask);
        return;
      }
      case "refused":
        // The mask allowed only what the grammar accepts, so this is a bug, not the client's error:
        // as vLLM, say so and let the request go on unconstrained rather than fail the batch.
        logger.error(
          `request ${message.requestId}: its grammar rejected sampled token ${message.tokenId}; it continues unconstrained`,
        );
        this.constrained.delete(message.requestId);
        return;
      case "failed":
        this.threadFailed(message.error);
        return;
    }
  }

  /** A dead grammar thread fails no batch: its requests go on unconstrained, new ones get a new thread. */
  private threadFailed(error: string): void {
    logger.error(
      `the grammar thread failed (${error}); ${this.constrained.size} constrained request(s) continue unconstrained`,
    );
    this.thread?.terminate();
    this.thread = null;
    this.constrained.clear();
    for (const adding of this.adding.values()) adding.reject(new Error(`the grammar thread failed: ${error}`));
    this.adding.clear();
    for (const waiter of this.maskWaiters.splice(0)) waiter(null);
  }
}
