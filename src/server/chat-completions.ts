// POST /v1/chat/completions: the conversation rendered by the model's chat template, then the
// same generation as completions, answered in the chat shapes: reasoning split off, tool calls
// parsed or enforced, structured outputs constrained by a grammar.
import { type ChatDelta, ChatDeltaStream, chatMessageParts, mergeDeltas } from "./chat-output.ts";
import { startChatRun } from "./chat-run.ts";
import type { ServerContext } from "./context.ts";
import type { ChoiceDelta } from "./generation.ts";
import { chatLogprobs } from "./logprobs.ts";
import { chatCompletionRequestSchema, refuseUnsupportedFields } from "./schemas.ts";
import { sseResponse } from "./sse.ts";
import { unixSeconds } from "./usage.ts";

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
  const { context, id, params, options, usage, generation } = await startChatRun(server, request, "chatcmpl");
  const created = unixSeconds();
  const model = context.servedModelName;
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
