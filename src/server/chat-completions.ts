// POST /v1/chat/completions: the conversation rendered by the model's chat template, then the
// same generation as completions, answered in the chat shapes.
import { chatPromptTokenIds } from "./chat-prompt.ts";
import { routeModel, type ServerContext } from "./context.ts";
import { ApiError } from "./errors.ts";
import { type ChoiceDelta, Generation } from "./generation.ts";
import { chatLogprobs } from "./logprobs.ts";
import { checkStreamOptions, samplingParams } from "./sampling.ts";
import { type ChatCompletionRequest, chatCompletionRequestSchema } from "./schemas.ts";
import { sseResponse } from "./sse.ts";
import { newRequestId, Usage, unixSeconds } from "./usage.ts";

/** Chat asks for logprobs with a flag and a count; the engine takes one number (or none). */
function requestedLogprobs(request: ChatCompletionRequest): number | null {
  if (request.logprobs) return request.top_logprobs ?? 0;
  if (request.top_logprobs) throw new ApiError(400, "top_logprobs needs logprobs set to true", "top_logprobs");
  return null;
}

export async function createChatCompletion(
  server: ServerContext,
  body: unknown,
  signal: AbortSignal,
): Promise<Response> {
  const request = chatCompletionRequestSchema.parse(body);
  const context = routeModel(server, request.model);
  checkStreamOptions(request);
  const tokenIds = chatPromptTokenIds(context, request);
  const params = samplingParams(context, request, {
    promptLength: tokenIds.length,
    promptField: "messages",
    maxTokens: request.max_completion_tokens ?? request.max_tokens,
    logprobs: requestedLogprobs(request),
  });
  const id = newRequestId("chatcmpl");
  const created = unixSeconds();
  const model = context.servedModelName;
  const usage = new Usage(tokenIds.length);
  const generation = Generation.start(context, id, [{ tokenIds, params }]);
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
    async function* chunks() {
      // OpenAI opens each choice with the assistant's role before any content.
      for (let index = 0; index < params.n; index++) {
        yield chunk([{ index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]);
      }
      for await (const choice of generation) {
        usage.add(choice);
        const { index, delta } = choice;
        const logprobs = logprobsOf(delta.tokenIds, delta.logprobs);
        if (delta.text === "" && !delta.finished && !logprobs) continue;
        yield chunk([
          {
            index,
            delta: delta.text === "" ? {} : { content: delta.text },
            logprobs,
            finish_reason: delta.finished ? delta.output.finishReason : null,
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
    choices[index] = {
      index,
      message: { role: "assistant", content: output.text },
      logprobs: logprobsOf(output.tokenIds, output.logprobs),
      finish_reason: output.finishReason,
      stop_reason: output.stopReason,
    };
  }
  generation.checkComplete();
  return Response.json({ id, object: "chat.completion", created, model, choices, usage });
}
