// What a connection may hold of the server: how long it may sit idle, how many requests may be in
// progress at once, and what a client that goes away leaves behind (one line in the log).
//
// Bun applies its idle timeout to a request in progress however many bytes flow (a streamed
// answer is cut when it expires, and so is a body that trickles in), and a per-request timeout
// stays with the connection after the request. So a request runs with Bun's timeout off, under its
// own deadlines (the body's, then the generation's; /metrics waits for the engine's step), and its
// connection goes back to the keep-alive idle timeout as its response completes.
import { ApiError, errorResponse } from "./errors.ts";

/** What of Bun's server the policy uses. */
export interface HttpServer {
  /** Requests in progress, streamed answers included, the current one too. */
  readonly pendingRequests: number;
  timeout(request: Request, seconds: number): void;
}

export interface ConnectionOptions {
  /** Seconds an idle keep-alive connection stays open (Bun's timer moves in 4 s steps). */
  keepAliveTimeoutSeconds: number;
  /** POSTs in progress past which another gets 503. */
  limitConcurrency: number;
}

export type FetchHandler = (request: Request, server: HttpServer) => Promise<Response>;

/** Answers as `response` does, and calls `onEnd` before its body's last byte is sent. */
function onStreamEnd(response: Response, onEnd: () => void): Response {
  const reader = response.body!.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await reader.read();
      if (!done) return controller.enqueue(value);
      // Bun takes a timeout set after the stream closes as being for no request at all.
      onEnd();
      controller.close();
    },
    cancel: (reason) => reader.cancel(reason),
  });
  return new Response(body, { status: response.status, headers: response.headers });
}

export function withConnectionLimits(
  app: (request: Request) => Promise<Response>,
  options: ConnectionOptions,
  onClientDisconnected: (request: Request) => void,
): FetchHandler {
  return async (request, server) => {
    // Bun aborts the signal only when the client leaves before its answer is complete.
    request.signal.addEventListener("abort", () => onClientDisconnected(request), { once: true });
    if (request.method === "POST" && server.pendingRequests > options.limitConcurrency) {
      const error = new ApiError(
        503,
        `the server has ${options.limitConcurrency} requests in progress, its limit (--limit-concurrency); retry later`,
      );
      return errorResponse(error, { Connection: "close" });
    }
    server.timeout(request, 0);
    const keepAlive = () => server.timeout(request, options.keepAliveTimeoutSeconds);
    const response = await app(request);
    if (response.headers.get("content-type") === "text/event-stream" && response.body)
      return onStreamEnd(response, keepAlive);
    keepAlive();
    return response;
  };
}
