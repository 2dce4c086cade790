// POST /v1/chat/completions: the conversation rendered by the model's chat template, then the
// same generation as completions, answered in the chat shapes: reasoning split off, tool calls
// parsed or enforced, structured outputs constrained by a grammar.
import type { StructuredOutputs } from "../engine/structured-output/structured-outputs.ts";
import {
  type ChatDelta,
  ChatDeltaStream,
  type ChatOutputOptions,
  chatMessageParts,
  mergeDeltas,
} from "./chat-output.ts";
import { chatPrompt } from "./chat-prompt.ts";
import { type ModelContext, routeModel, type ServerContext } from "./context.ts";
import { ApiError } from "./errors.ts";
import { type ChoiceDelta, Generation } from "./generation.ts";
import { chatLogprobs } from "./logprobs.ts";
import { reasoningParser } from "./reasoning/reasoning-parser.ts";
import { checkStreamOptions, samplingParams } from "./sampling.ts";
import { type ChatCompletionRequest, chatCompletionRequestSchema, refuseUnsupportedFields } from "./schemas.ts";
import { sseResponse } from "./sse.ts";
import { structuredOutputs } from "./structured-outputs.ts";
import { toolConstraint, toolMode } from "./tools.ts";
import { newRequestId, Usage, unixSeconds } from "./usage.ts";

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

function messageDelta(delta: ChatDelta): object {
  return {
    ...(delta.content !== undefined ? { content: delta.content } : {}),
    ...(delta.reasoning !== undefined ? { reasoning_content: delta.reasoning, reasoning: delta.reasoning } : {}),
    ...(delta.toolCalls
      ? {
          tool_calls: delta.toolCalls.map((call) => ({
            index: call.index,
            ...(call.id !== undefined ? { id: call.id, type: "function" } : {}),
            function: {
              ...(call.name !== undefined ? { name: call.name } : {}),
              ...(call.arguments !== undefined ? { arguments: call.arguments } : {}),
            },
          })),
        }
      : {}),
  };
}

/** A stop that ended in tool calls is OpenAI's "tool_calls". */
function finishReason(reason: string | null, sawToolCalls: boolean): string | null {
  return reason === "stop" && sawToolCalls ? "tool_calls" : reason;
}

export async function createChatCompletion(
  server: ServerContext,
  body: unknown,
  signal: AbortSignal,
): Promise<Response> {
  refuseUnsupportedFields(body, "chat");
  const request = chatCompletionRequestSchema.parse(body);
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
  const id = newRequestId("chatcmpl");
  const created = unixSeconds();
  const model = context.servedModelName;
  const usage = new Usage(tokenIds.length);
  const generation = Generation.start(context, id, [{ tokenIds, params, asGiven: prompt }]);
  const { tokenizer } = context.engine;
  const logprobsOf = (tokenIdsOf: readonly number[], logprobs: ChoiceDelta["delta"]["logprobs"]) =>
    logprobs && chatLogprobs(tokenizer, tokenIdsOf, logprobs);

  if (request.stream) {
    const includeUsage = request.stream_options?.include_usage ?? false;
    const chunk = (choices: object[]) => ({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      choices,
      ...(includeUsage ? { usage: null } : {}),
    });
    const streams = Array.from({ length: params.n }, () => new ChatDeltaStream(options));
    async function* chunks() {
      // OpenAI opens each choice with the assistant's role before any content.
      for (let index = 0; index < params.n; index++) {
        yield chunk([{ index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]);
      }
      for await (const choice of generation) {
        usage.add(choice);
        const { index, delta } = choice;
        const stream = streams[index]!;
        const logprobs = logprobsOf(delta.tokenIds, delta.logprobs);
        const parsed = stream.push(delta.text);
        const message = delta.finished ? mergeDeltas(parsed, stream.finish()) : parsed;
        const fields = messageDelta(message);
        if (Object.keys(fields).length === 0 && !delta.finished && !logprobs) continue;
        yield chunk([
          {
            index,
            delta: fields,
            logprobs,
            finish_reason: delta.finished ? finishReason(delta.output.finishReason, stream.sawToolCalls) : null,
            stop_reason: delta.finished ? delta.output.stopReason : null,
          },
        ]);
      }
      generation.checkComplete();
      if (includeUsage) yield { ...chunk([]), usage };
    }
    return sseResponse(chunks(), () => generation.abort());
  }

  signal.addEventListener("abort", () => generation.abort());
  const choices: object[] = [];
  for await (const choice of generation) {
    usage.add(choice);
    const { index, delta } = choice;
    if (!delta.finished) continue;
    const { output } = delta;
    const parts = chatMessageParts(output.text, options);
    choices[index] = {
      index,
      message: {
        role: "assistant",
        content: parts.content,
        ...(parts.reasoning !== null ? { reasoning_content: parts.reasoning, reasoning: parts.reasoning } : {}),
        ...(parts.toolCalls.length > 0
          ? {
              tool_calls: parts.toolCalls.map((call) => ({
                id: call.id,
                type: "function",
                function: { name: call.name, arguments: call.arguments },
              })),
            }
          : {}),
      },
      logprobs: logprobsOf(output.tokenIds, output.logprobs),
      finish_reason: finishReason(output.finishReason, parts.toolCalls.length > 0),
      stop_reason: output.stopReason,
    };
  }
  generation.checkComplete();
  return Response.json({ id, object: "chat.completion", created, model, choices, usage });
}
