// POST /v1/messages: Anthropic's Messages API over the chat path. The answer is a list of content
// blocks (thinking, text, tool_use), whole or streamed as message_start, content_block_start /
// _delta / _stop per block, message_delta with the stop reason, and message_stop.
import type { CompletionOutput } from "../../engine/output-processor.ts";
import { chatPrompt } from "../chat-prompt.ts";
import { type ChatRun, startChatRun } from "../chat-run.ts";
import { routeModel, type ServerContext } from "../context.ts";
import type { Block, BlockEvent } from "../output-blocks.ts";
import { StreamedAnswer, wholeAnswer } from "../single-choice.ts";
import { type SseFraming, sseResponse } from "../sse.ts";
import { anthropicError } from "./errors.ts";
import {
  chatRequestOf,
  countTokensRequestSchema,
  messagesRequestSchema,
  refuseUnsupportedMessageFields,
} from "./request.ts";

const FRAMING: SseFraming = { namedEvents: true, doneMarker: false, errorEvent: anthropicError };

/** Why the message ended, in Anthropic's words, and the stop sequence that ended it. */
function stopReason(output: CompletionOutput, sawToolCalls: boolean) {
  if (output.finishReason === "length") return { stop_reason: "max_tokens", stop_sequence: null };
  if (sawToolCalls) return { stop_reason: "tool_use", stop_sequence: null };
  if (typeof output.stopReason === "string") return { stop_reason: "stop_sequence", stop_sequence: output.stopReason };
  return { stop_reason: "end_turn", stop_sequence: null };
}

/** A tool call's arguments as the object Anthropic's tool_use carries (the parsers and grammars only pass JSON). */
function toolInput(block: Block & { kind: "tool_call" }): unknown {
  return block.text.trim() === "" ? {} : JSON.parse(block.text);
}

/** A block as it opens (empty), or whole. */
function contentBlock(block: Block, opening = false): object {
  switch (block.kind) {
    case "reasoning":
      // No signature: nothing here is signed, and clients send thinking blocks back as they got them.
      return { type: "thinking", thinking: opening ? "" : block.text, signature: "" };
    case "text":
      return { type: "text", text: opening ? "" : block.text };
    case "tool_call":
      return { type: "tool_use", id: block.id, name: block.name, input: opening ? {} : toolInput(block) };
  }
}

function blockDelta(block: Block, text: string): object {
  switch (block.kind) {
    case "reasoning":
      return { type: "thinking_delta", thinking: text };
    case "text":
      return { type: "text_delta", text };
    case "tool_call":
      return { type: "input_json_delta", partial_json: text };
  }
}

function streamEvent(event: BlockEvent): object {
  switch (event.type) {
    case "start":
      return { type: "content_block_start", index: event.index, content_block: contentBlock(event.block, true) };
    case "delta":
      return { type: "content_block_delta", index: event.index, delta: blockDelta(event.block, event.text) };
    case "stop":
      return { type: "content_block_stop", index: event.index };
  }
}

/** The message's fields before any content. */
function messageHead(run: ChatRun, model: string) {
  return { id: run.id, type: "message", role: "assistant", model };
}

async function* messageEvents(run: ChatRun, model: string) {
  const usage = { input_tokens: run.usage.promptTokens, output_tokens: 0 };
  yield {
    type: "message_start",
    message: { ...messageHead(run, model), content: [], stop_reason: null, stop_sequence: null, usage },
  };
  const streamed = new StreamedAnswer(run);
  for await (const event of streamed) yield streamEvent(event);
  const { output, sawToolCalls } = streamed.answer!;
  const delta = stopReason(output, sawToolCalls);
  yield { type: "message_delta", delta, usage: { output_tokens: run.usage.completionTokens } };
  yield { type: "message_stop" };
}

export async function createMessage(server: ServerContext, body: unknown, signal: AbortSignal): Promise<Response> {
  refuseUnsupportedMessageFields(body);
  const request = messagesRequestSchema.parse(body);
  const run = await startChatRun(server, chatRequestOf(request), "msg");
  if (request.stream) return sseResponse(messageEvents(run, request.model), () => run.generation.abort(), FRAMING);
  const { output, blocks, sawToolCalls } = await wholeAnswer(run, signal);
  return Response.json({
    ...messageHead(run, request.model),
    content: blocks.map((block) => contentBlock(block)),
    ...stopReason(output, sawToolCalls),
    usage: { input_tokens: run.usage.promptTokens, output_tokens: run.usage.completionTokens },
  });
}

/** POST /v1/messages/count_tokens: the prompt's length, as the chat template renders it. */
export async function countMessageTokens(server: ServerContext, body: unknown): Promise<Response> {
  refuseUnsupportedMessageFields(body);
  const request = countTokensRequestSchema.parse(body);
  const context = routeModel(server, request.model);
  const { tokenIds } = await chatPrompt(context, chatRequestOf(request));
  return Response.json({ input_tokens: tokenIds.length });
}
