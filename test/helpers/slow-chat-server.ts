// A stand-in OpenAI-compatible server whose chat answers stream "tick " forever, one piece every
// few milliseconds, until the client hangs up: it shows a client stops an answer mid-stream, and
// records what each request asked for.
export interface SlowChatServer {
  url: string;
  /** The bodies of the chat requests received, in order. */
  requests: Record<string, unknown>[];
  /** How many answer streams the client cancelled. */
  cancelled(): number;
  stop(): void;
}

export const SLOW_MODEL = "slow-model";
export const PIECE = "tick ";

export function startSlowChatServer(): SlowChatServer {
  const requests: Record<string, unknown>[] = [];
  let cancelled = 0;
  const encoder = new TextEncoder();
  const chunk = (content: string) =>
    encoder.encode(
      `data: ${JSON.stringify({ id: "chatcmpl-slow", object: "chat.completion.chunk", created: 0, model: SLOW_MODEL, choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`,
    );
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    idleTimeout: 0,
    routes: {
      "/v1/models": () =>
        Response.json({ object: "list", data: [{ id: SLOW_MODEL, object: "model", created: 0, owned_by: "test" }] }),
      "/v1/chat/completions": async (request) => {
        requests.push((await request.json()) as Record<string, unknown>);
        let timer: ReturnType<typeof setInterval> | undefined;
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            timer = setInterval(() => controller.enqueue(chunk(PIECE)), 20);
          },
          cancel() {
            clearInterval(timer);
            cancelled++;
          },
        });
        return new Response(body, { headers: { "content-type": "text/event-stream" } });
      },
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    requests,
    cancelled: () => cancelled,
    stop: () => void server.stop(true),
  };
}
