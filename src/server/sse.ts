// Server-sent events as OpenAI streams them: `data: <json>\n\n` per chunk, `data: [DONE]\n\n` at
// the end. A client that goes away cancels the body stream, which must free the engine's work
// at once rather than when the next token happens to arrive.
import { toApiError } from "./errors.ts";

const encoder = new TextEncoder();
const event = (data: unknown) => encoder.encode(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);

export function sseResponse(chunks: AsyncIterable<unknown>, onCancel: () => void): Response {
  const iterator = chunks[Symbol.asyncIterator]();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { value, done } = await iterator.next();
        if (!done) return controller.enqueue(event(value));
      } catch (error) {
        // Headers are sent: the error travels as an event, as vLLM streams it.
        controller.enqueue(event(toApiError(error).toJSON()));
      }
      controller.enqueue(event("[DONE]"));
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
