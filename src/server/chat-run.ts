// A chat request started on the engine: the conversation rendered and tokenized, its tool mode and
// output grammar settled, its sampling parameters checked, its generation submitted. Chat
// completions, the Responses API and Anthropic's Messages API all start here from a chat request;
// each then writes the generation out in its own protocol.
import type { SamplingParams } from "../engine/sampling-params.ts";
import type { StructuredOutputs } from "../engine/structured-output/structured-outputs.ts";
import type { ChatOutputOptions } from "./chat-output.ts";
import { chatPrompt } from "./chat-prompt.ts";
import { type ModelContext, routeModel, type ServerContext } from "./context.ts";
import { ApiError } from "./errors.ts";
import { Generation } from "./generation.ts";
import { reasoningParser } from "./reasoning/reasoning-parser.ts";
import { checkStreamOptions, samplingParams } from "./sampling.ts";
import type { ChatCompletionRequest } from "./schemas.ts";
import { structuredOutputs } from "./structured-outputs.ts";
import { toolConstraint, toolMode } from "./tools.ts";
import { newRequestId, type RequestIdPrefix, Usage } from "./usage.ts";

export interface ChatRun {
  context: ModelContext;
  id: string;
  params: SamplingParams;
  /** How the choices' text becomes messages: reasoning, content, tool calls. */
  options: ChatOutputOptions;
  /** Counts the prompt once and every choice's tokens. */
  usage: Usage;
  generation: Generation;
}

/** Chat asks for logprobs with a flag and a count; the engine takes one number (or none). */
function requestedLogprobs(request: ChatCompletionRequest): number | null {
  if (request.logprobs) return request.top_logprobs ?? 0;
  if (request.top_logprobs) throw new ApiError(400, "top_logprobs needs logprobs set to true", "top_logprobs");
  return null;
}

/** How the choices' text becomes messages, and the grammar that applies after any reasoning. */
function outputOptions(context: ModelContext, request: ChatCompletionRequest, prompt: string): ChatOutputOptions {
  const reasoning = context.reasoningParser === null ? null : reasoningParser(context.reasoningParser);
  // The template may open (deepseek_r1) or close (Qwen3 without thinking) the reasoning itself.
  const tail = prompt.trimEnd();
  const closedByPrompt = reasoning !== null && tail.endsWith(reasoning.endMarker);
  const inReasoning =
    reasoning !== null && !closedByPrompt && (reasoning.startsInReasoning || tail.endsWith(reasoning.startMarker));
  return { mode: toolMode(context, request), reasoning, inReasoning, closedByPrompt };
}

/**
 * The grammar starts after the reasoning: once the end marker's tokens have been generated, unless
 * the prompt already closed it (or the model cannot reason under this parser).
 */
function afterReasoning(context: ModelContext, options: ChatOutputOptions, outputs: StructuredOutputs | null) {
  if (!outputs || !options.reasoning || options.closedByPrompt) return outputs;
  const startAfterTokenIds = context.engine.tokenizer.encode(options.reasoning.endMarker, { addSpecialTokens: false });
  return { ...outputs, startAfterTokenIds };
}

export async function startChatRun(
  server: ServerContext,
  request: ChatCompletionRequest,
  idPrefix: RequestIdPrefix,
): Promise<ChatRun> {
  const context = routeModel(server, request.model);
  checkStreamOptions(request);
  const { prompt, tokenIds } = await chatPrompt(context, request);
  const options = outputOptions(context, request, prompt);
  const constraint = await structuredOutputs(context, request, toolConstraint(options.mode, request.tools ?? []));
  const params = samplingParams(context, request, {
    promptLength: tokenIds.length,
    promptField: "messages",
    maxTokens: request.max_completion_tokens ?? request.max_tokens,
    logprobs: requestedLogprobs(request),
    structuredOutputs: afterReasoning(context, options, constraint),
  });
  const id = newRequestId(idPrefix);
  const generation = Generation.start(context, id, [{ tokenIds, params, asGiven: prompt }]);
  return { context, id, params, options, usage: new Usage(tokenIds.length), generation };
}
