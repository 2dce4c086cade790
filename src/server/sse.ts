// Server-sent events, framed as each protocol streams them: OpenAI's chat and completions send
// `data: <json>\n\n` per chunk and `data: [DONE]\n\n` at the end; the Responses API and Anthropic's
// Messages API name each event after its `type` (`event: <type>\n`) and send no end marker. A
// client that goes away cancels the body stream, which must free the engine's work at once rather
// than when the next token happens to arrive.
import { type ApiError, toApiError } from "./errors.ts";

export interface SseFraming {
  /** An `event:` line naming each event by its `type` field. */
  namedEvents: boolean;
  /** `data: [DONE]` after the last event. */
  doneMarker: boolean;
  /** A failure after the headers are sent, as the protocol's error event. */
  errorEvent(error: ApiError): object;
}

/** Chat completions and completions, as vLLM streams their errors: the error object as a chunk. */
export const OPENAI_CHUNKS: SseFraming = {
  namedEvents: false,
  doneMarker: true,
  errorEvent: (error) => error.toJSON(),
};

const encoder = new TextEncoder();

function encodeEvent(data: unknown, framing: SseFraming): Uint8Array {
  const type = (data as { type?: unknown }).type;
  const name = framing.namedEvents && typeof type === "string" ? `event: ${type}\n` : "";
  return encoder.encode(`${name}data: ${JSON.stringify(data)}\n\n`);
}

export function sseResponse(
  chunks: AsyncIterable<object>,
  onCancel: () => void,
  framing: SseFraming = OPENAI_CHUNKS,
): Response {
  const iterator = chunks[Symbol.asyncIterator]();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { value, done } = await iterator.next();
        if (!done) return controller.enqueue(encodeEvent(value, framing));
      } catch (error) {
        controller.enqueue(encodeEvent(framing.errorEvent(toApiError(error)), framing));
      }
      if (framing.doneMarker) controller.enqueue(encoder.encode("data: [DONE]\n\n"));
      controller.close();
    },
    cancel() {
      onCancel();
      void iterator.return?.();
    },
  });
  return new Response(body, {
    headers: { "Content-Type": "text/event-stream", "Cache-Control": "no-cache", Connection: "keep-alive" },
  });
}
