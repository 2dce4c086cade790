// What every handler needs: the served models and the server's limits. A request's `model` field
// picks one model; from there on the handler sees that model's engine as if it were the only one.
import type { AsyncEngine } from "../engine/async-engine.ts";
import type { GrammarChecker } from "../engine/structured-output/grammar-checker.ts";
import { quoteInput } from "../quote-input.ts";
import { ApiError } from "./errors.ts";
import type { Metrics } from "./metrics.ts";
import type { TokenizerThread } from "./tokenizer-thread.ts";

export interface ServerOptions {
  /** When set, /v1 routes want `Authorization: Bearer <apiKey>`. */
  apiKey: string | null;
  /**
   * Queued plus running sequences (n per prompt) of one model's engine past which new requests get
   * 503; a request that alone asks for more gets 400.
   */
  maxPendingRequests: number;
  /** The largest `n` a request may ask for (400 past it). */
  maxN: number;
  /** Request bodies past this many bytes get 413. */
  maxBodyBytes: number;
  /** Parses tool calls out of free text (vLLM's --tool-call-parser), or null. */
  toolCallParser: string | null;
  /** tool_choice "auto" allowed (vLLM's --enable-auto-tool-choice; needs a tool-call parser). */
  enableAutoToolChoice: boolean;
  /** Splits reasoning from the answer (vLLM's --reasoning-parser), or null. */
  reasoningParser: string | null;
  /** Checks clients' schemas, regexes and grammars before they reach an engine. */
  grammarChecker: GrammarChecker;
  /** One log line per finished request (vLLM's request logs; off with --disable-log-requests). */
  logRequests: boolean;
  /** The request log lines show the prompts (--log-prompts); by default they never do. */
  logPrompts: boolean;
}

/** One model the server serves: its own engine (Worker, KV cache), tokenizer and metrics. */
export interface ServedModel {
  /** The name clients put in `model`; the model directory's name by default. */
  servedModelName: string;
  engine: AsyncEngine;
  metrics: Metrics;
  /** Overrides the tokenizer's chat template (--chat-template, or the config's chatTemplate). */
  chatTemplate: string | null;
  /**
   * Where long text is tokenized, off the HTTP thread; null: always on the calling thread (the chat
   * REPL has no HTTP thread to keep free).
   */
  tokenizerThread: TokenizerThread | null;
}

export interface ServerContext extends ServerOptions {
  models: readonly ServedModel[];
}

/** One request's view: the server's limits and the model the request names. */
export interface ModelContext extends ServerOptions, ServedModel {}

function servedNames(context: ServerContext): string {
  return context.models.map((model) => `\`${model.servedModelName}\``).join(", ");
}

/**
 * The model a request's `model` field names; any other name is a 404. A missing `model` means
 * the only served model (lenient where vLLM requires it), and is a 400 when there are several.
 */
export function routeModel(context: ServerContext, requested: string | null | undefined): ModelContext {
  const { models, ...options } = context;
  if (requested === null || requested === undefined) {
    if (models.length > 1)
      throw new ApiError(400, `model is required: this server serves ${servedNames(context)}`, "model");
    return { ...options, ...models[0]! };
  }
  const model = context.models.find((served) => served.servedModelName === requested);
  if (!model)
    throw new ApiError(
      404,
      `The model \`${quoteInput(requested)}\` does not exist; this server serves ${servedNames(context)}.`,
      "model",
    );
  return { ...options, ...model };
}

export function maxModelLen(model: ServedModel): number {
  return model.engine.info.config.maxModelLen;
}
