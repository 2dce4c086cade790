// A request's sampling fields as the engine's SamplingParams, after vLLM's context-length checks:
// a prompt that fills the context, or a max_tokens that overflows it, is the client's 400 before
// anything reaches the engine.
import { SamplingParams, type SamplingParamsInit } from "../engine/sampling-params.ts";
import type { StructuredOutputs } from "../engine/structured-output/structured-outputs.ts";
import { type ModelContext, maxModelLen } from "./context.ts";
import { ApiError } from "./errors.ts";
import type { CompletionRequest } from "./schemas.ts";

/** The sampling fields both endpoints share (their names match in both schemas). */
type GenerationFields = Omit<CompletionRequest, "prompt" | "echo" | "logprobs" | "suffix">;

export interface PromptBudget {
  promptLength: number;
  /** Which request field the prompt came from, for the error's `param`. */
  promptField: "prompt" | "messages";
  maxTokens: number | null | undefined;
  logprobs: number | null;
  /** The grammar the output must follow, already checked. */
  structuredOutputs?: StructuredOutputs | null;
}

export function samplingParams(context: ModelContext, body: GenerationFields, budget: PromptBudget): SamplingParams {
  const contextLength = maxModelLen(context);
  const { promptLength, promptField } = budget;
  if (promptLength === 0) throw new ApiError(400, `${promptField} must not be empty`, promptField);
  if (promptLength >= contextLength) {
    throw new ApiError(
      400,
      `This model's maximum context length is ${contextLength} tokens. However, your request has ${promptLength} input tokens. ` +
        `Please reduce the length of the input ${promptField}.`,
      promptField,
    );
  }
  checkN(context, body.n);
  const maxTokens = budget.maxTokens ?? defaultMaxTokens(context, promptLength);
  if (promptLength + maxTokens > contextLength) {
    throw new ApiError(
      400,
      `This model's maximum context length is ${contextLength} tokens. However, you requested ${promptLength + maxTokens} tokens ` +
        `(${promptLength} in the ${promptField}, ${maxTokens} in the completion). Please reduce the length of the ${promptField} or completion.`,
      "max_tokens",
    );
  }
  const init: Partial<SamplingParamsInit> = {
    n: body.n ?? undefined,
    temperature: body.temperature ?? undefined,
    topP: body.top_p ?? undefined,
    topK: body.top_k ?? undefined,
    minP: body.min_p ?? undefined,
    repetitionPenalty: body.repetition_penalty ?? undefined,
    presencePenalty: body.presence_penalty ?? undefined,
    frequencyPenalty: body.frequency_penalty ?? undefined,
    logitBias: body.logit_bias ?? undefined,
    seed: body.seed ?? undefined,
    maxTokens,
    minTokens: body.min_tokens ?? undefined,
    stopTokenIds: body.stop_token_ids ?? undefined,
    stop: body.stop ?? undefined,
    ignoreEos: body.ignore_eos ?? undefined,
    logprobs: budget.logprobs ?? undefined,
    skipSpecialTokens: body.skip_special_tokens ?? undefined,
    includeStopStrInOutput: body.include_stop_str_in_output ?? undefined,
    structuredOutputs: budget.structuredOutputs ?? undefined,
  };
  return new SamplingParams(init);
}

/** n past --max-n is a 400 (SamplingParams checks that it is a positive integer). */
export function checkN(context: ModelContext, n: number | null | undefined): void {
  if (n !== null && n !== undefined && n > context.maxN)
    throw new ApiError(400, `n must be at most ${context.maxN} (this server's --max-n), got ${n}`, "n");
}

/** As vLLM: the rest of the context, capped by generation_config's max_new_tokens if it has one. */
function defaultMaxTokens(context: ModelContext, promptLength: number): number {
  const remaining = maxModelLen(context) - promptLength;
  return Math.min(remaining, context.engine.source.generationConfig.maxNewTokens ?? remaining);
}

/** stream_options only mean something on a stream, and vLLM refuses them otherwise. */
export function checkStreamOptions(body: GenerationFields): void {
  if (body.stream_options && !body.stream) {
    throw new ApiError(400, "stream_options can only be set when stream is true", "stream_options");
  }
}
