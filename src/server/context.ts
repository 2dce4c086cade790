// What every handler needs: the engine, the served model's name and the server's limits.
import type { AsyncEngine } from "../engine/async-engine.ts";
import { ApiError } from "./errors.ts";
import type { Metrics } from "./metrics.ts";

export interface ServerOptions {
  /** The name clients put in `model`; the model directory's name by default. */
  servedModelName: string;
  /** When set, /v1 routes want `Authorization: Bearer <apiKey>`. */
  apiKey: string | null;
  /** Queued plus running engine requests past which new ones get 503. */
  maxPendingRequests: number;
  /** Request bodies past this many bytes get 413. */
  maxBodyBytes: number;
  /** Overrides the tokenizer's chat template (--chat-template). */
  chatTemplate: string | null;
}

export interface ServerContext extends ServerOptions {
  engine: AsyncEngine;
  metrics: Metrics;
}

/** A missing `model` means the served one (lenient where vLLM requires it); any other is a 404. */
export function checkModel(context: ServerContext, model: string | null | undefined): void {
  if (model !== null && model !== undefined && model !== context.servedModelName) {
    throw new ApiError(404, `The model \`${model}\` does not exist; this server serves \`${context.servedModelName}\`.`, "model");
  }
}

export function maxModelLen(context: ServerContext): number {
  return context.engine.info.config.maxModelLen;
}
