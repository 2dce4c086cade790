// POST /v1/responses: OpenAI's Responses API over the chat path. The answer comes back as output
// items, whole or streamed as typed events (response.created, output_item.added, *.delta, *.done,
// ..., response.completed), each numbered by sequence_number.
import type { CompletionOutput } from "../../engine/output-processor.ts";
import { type ChatRun, startChatRun } from "../chat-run.ts";
import type { ServerContext } from "../context.ts";
import type { ApiError } from "../errors.ts";
import type { Block, BlockEvent } from "../output-blocks.ts";
import { StreamedAnswer, wholeAnswer } from "../single-choice.ts";
import { type SseFraming, sseResponse } from "../sse.ts";
import { unixSeconds } from "../usage.ts";
import { contentPart, itemId, outputItem, type ResponseHeader, type ResponseStatus, responseObject } from "./output.ts";
import { chatRequestOf, refuseUnsupportedResponseFields, responsesRequestSchema } from "./request.ts";

/** Cut short by max_output_tokens, or complete. */
function endStatus(output: CompletionOutput): ResponseStatus {
  return output.finishReason === "length" ? "incomplete" : "completed";
}

/** Numbers the events of one stream, the error event included. */
class EventSequence {
  private next = 0;

  event(type: string, fields: object): object {
    return { type, sequence_number: this.next++, ...fields };
  }

  framing(): SseFraming {
    const errorEvent = (error: ApiError) => {
      const { type, message, param } = error.toJSON().error;
      return this.event("error", { code: type, message, param });
    };
    return { namedEvents: true, doneMarker: false, errorEvent };
  }
}

/** The events one block event becomes. */
function itemEvents(sequence: EventSequence, header: ResponseHeader, blockEvent: BlockEvent): object[] {
  const { index: output_index, block } = blockEvent;
  const item_id = itemId(header, block, output_index);
  const at = { item_id, output_index };
  const part = { ...at, content_index: 0 };
  const event = (type: string, fields: object) => sequence.event(type, fields);
  switch (blockEvent.type) {
    case "start": {
      const added = event("response.output_item.added", { output_index, item: outputItem(block, item_id, true) });
      if (block.kind === "tool_call") return [added];
      return [added, event("response.content_part.added", { ...part, part: contentPart({ ...block, text: "" }) })];
    }
    case "delta":
      if (block.kind === "tool_call")
        return [event("response.function_call_arguments.delta", { ...at, delta: blockEvent.text })];
      if (block.kind === "reasoning")
        return [event("response.reasoning_text.delta", { ...part, delta: blockEvent.text })];
      return [event("response.output_text.delta", { ...part, delta: blockEvent.text, logprobs: [] })];
    case "stop": {
      // Numbered as they are made: the item's last events first, its own done event after them.
      const events =
        block.kind === "tool_call"
          ? [event("response.function_call_arguments.done", { ...at, name: block.name, arguments: block.text })]
          : [
              block.kind === "reasoning"
                ? event("response.reasoning_text.done", { ...part, text: block.text })
                : event("response.output_text.done", { ...part, text: block.text, logprobs: [] }),
              event("response.content_part.done", { ...part, part: contentPart(block) }),
            ];
      return [...events, event("response.output_item.done", { output_index, item: outputItem(block, item_id) })];
    }
  }
}

async function* responseEvents(run: ChatRun, header: ResponseHeader, sequence: EventSequence) {
  const inProgress = responseObject(header, "in_progress", []);
  yield sequence.event("response.created", { response: inProgress });
  yield sequence.event("response.in_progress", { response: inProgress });
  const streamed = new StreamedAnswer(run);
  for await (const blockEvent of streamed) yield* itemEvents(sequence, header, blockEvent);
  const { output, blocks } = streamed.answer!;
  const status = endStatus(output);
  const type = status === "incomplete" ? "response.incomplete" : "response.completed";
  yield sequence.event(type, { response: responseObject(header, status, outputItems(header, blocks)) });
}

function outputItems(header: ResponseHeader, blocks: readonly Block[]): object[] {
  return blocks.map((block, index) => outputItem(block, itemId(header, block, index)));
}

export async function createResponse(server: ServerContext, body: unknown, signal: AbortSignal): Promise<Response> {
  refuseUnsupportedResponseFields(body);
  const request = responsesRequestSchema.parse(body);
  const run = await startChatRun(server, chatRequestOf(request), "resp");
  const header: ResponseHeader = { run, request, createdAt: unixSeconds() };
  if (request.stream) {
    const sequence = new EventSequence();
    return sseResponse(responseEvents(run, header, sequence), () => run.generation.abort(), sequence.framing());
  }
  const { output, blocks } = await wholeAnswer(run, signal);
  return Response.json(responseObject(header, endStatus(output), outputItems(header, blocks)));
}
