// The in-process backend: an AsyncEngine on the model, with the prompt rendered and the sampling
// checked by the very functions the server uses, so an answer here is the answer
// POST /v1/chat/completions would give for the same conversation and settings.

import { AsyncEngine } from "../../engine/async-engine.ts";
import type { CoreOptions } from "../../engine/core-protocol.ts";
import { GrammarChecker } from "../../engine/structured-output/grammar-checker.ts";
import type { ChatMessage } from "../../model/chat-template.ts";
import { chatPrompt } from "../../server/chat-prompt.ts";
import type { ModelContext } from "../../server/context.ts";
import { Metrics } from "../../server/metrics.ts";
import { samplingParams } from "../../server/sampling.ts";
import type { ChatBackend } from "./backend.ts";
import type { ChatSettings } from "./conversation.ts";

export class LocalBackend implements ChatBackend {
  private readonly context: ModelContext;
  private nextRequest = 0;

  /** Chats over an engine that is already running; close() shuts it down. */
  constructor(engine: AsyncEngine, chatTemplate: string | null = null) {
    // The server's limits do not apply to one user at a prompt; metrics are kept but never read.
    this.context = {
      engine,
      metrics: new Metrics(engine.source.name, engine.info),
      servedModelName: engine.source.name,
      apiKey: null,
      maxPendingRequests: 1,
      maxN: 1,
      maxBodyBytes: Number.MAX_SAFE_INTEGER,
      chatTemplate,
      tokenizerThread: null,
      toolCallParser: null,
      enableAutoToolChoice: false,
      reasoningParser: null,
      logRequests: false,
      logPrompts: false,
      grammarChecker: new GrammarChecker(),
    };
  }

  static async start(options: CoreOptions, chatTemplate: string | null): Promise<LocalBackend> {
    return new LocalBackend(await AsyncEngine.start(options), chatTemplate);
  }

  get modelName(): string {
    return this.context.servedModelName;
  }

  async *stream(messages: ChatMessage[], settings: ChatSettings, signal: AbortSignal): AsyncIterable<string> {
    const { engine } = this.context;
    const { tokenIds } = await chatPrompt(this.context, { messages });
    const params = samplingParams(
      this.context,
      { temperature: settings.temperature, top_p: settings.topP, seed: settings.seed },
      { promptLength: tokenIds.length, promptField: "messages", maxTokens: settings.maxTokens, logprobs: null },
    );
    const requestId = `chat-${this.nextRequest++}`;
    // Aborting ends the request's stream, so the loop below wakes up and finishes.
    const abort = () => engine.abort(requestId);
    signal.addEventListener("abort", abort, { once: true });
    try {
      for await (const delta of engine.generate(requestId, tokenIds, params)) {
        if (delta.error) throw new Error(delta.error);
        if (delta.text) yield delta.text;
      }
    } finally {
      signal.removeEventListener("abort", abort);
    }
  }

  close(): Promise<void> {
    return this.context.engine.shutdown();
  }
}
