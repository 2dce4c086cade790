// What a connection may hold of the server: a body shorter than its Content-Length is cut at the
// body deadline, idle connections are closed, POSTs past --limit-concurrency are refused, a stream
// is never cut while it flows, and a client that leaves is one line in the log.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { withConnectionLimits } from "../../src/server/connections.ts";
import { type ServerProcess, startServer, writeServerTestModel } from "../helpers/server-process.ts";

let server: ServerProcess;

beforeAll(async () => {
  server = await startServer(await writeServerTestModel(), [
    "--request-body-timeout",
    "1",
    "--timeout-keep-alive",
    "1",
    "--limit-concurrency",
    "3",
    "--allowed-hosts",
    "127.0.0.1,api.example",
  ]);
});

afterAll(async () => {
  await server?.stop();
});

/** A raw connection: what it received, and when the server closed it (ms after opening). */
interface RawConnection {
  received(): string;
  closed: Promise<number>;
  write(text: string): void;
  end(): void;
}

function connect(url: string): Promise<RawConnection> {
  const { hostname, port } = new URL(url);
  const opened = performance.now();
  let text = "";
  let onClose: (ms: number) => void = () => {};
  const closed = new Promise<number>((resolve) => (onClose = resolve));
  return new Promise((resolve, reject) => {
    Bun.connect({
      hostname,
      port: Number(port),
      socket: {
        open: (socket) =>
          resolve({
            received: () => text,
            closed,
            write: (data) => socket.write(data),
            end: () => socket.end(),
          }),
        data: (_, data) => {
          text += new TextDecoder().decode(data);
        },
        close: () => onClose(performance.now() - opened),
        connectError: (_, error) => reject(error),
      },
    });
  });
}

const completion = (body: object) =>
  fetch(`${server.url}/v1/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });

const HEAD = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n";

describe("deadlines", () => {
  test("a body shorter than its Content-Length gets a 408 and its connection closed, while others are served", async () => {
    const stalled = await connect(server.url);
    stalled.write(`${HEAD}Content-Length: 1000\r\n\r\n{"prompt": "hi"`);
    expect((await completion({ prompt: "meanwhile", max_tokens: 4 })).status).toBe(200);
    expect(await stalled.closed).toBeLessThan(10_000);
    expect(stalled.received()).toStartWith("HTTP/1.1 408");
    expect(stalled.received()).toContain('"code":408');
  });

  test("idle keep-alive connections are closed, those that served a generation too", async () => {
    const idle = await connect(server.url);
    idle.write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    const generated = await connect(server.url);
    const body = JSON.stringify({ prompt: "hi", max_tokens: 4 });
    generated.write(`${HEAD}Content-Length: ${body.length}\r\n\r\n${body}`);
    // Bun closes an idle connection within two of its 4 s timer steps after the timeout.
    const [idleMs, generatedMs] = await Promise.all([idle.closed, generated.closed]);
    expect([idleMs, generatedMs].every((ms) => ms < 15_000)).toBe(true);
    expect(idle.received()).toStartWith("HTTP/1.1 200");
    expect(generated.received()).toStartWith("HTTP/1.1 200");
    expect(generated.received()).toContain('"text_completion"');
  }, 30_000);
});

describe("--limit-concurrency", () => {
  test("past 3 POSTs in progress another gets a 503, and GET routes still answer", async () => {
    const stalled = await Promise.all([connect(server.url), connect(server.url), connect(server.url)]);
    for (const connection of stalled) connection.write(`${HEAD}Content-Length: 1000\r\n\r\n{`);
    await Bun.sleep(100);
    const refused = await completion({ prompt: "hi", max_tokens: 2 });
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain("--limit-concurrency");
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    await Promise.all(stalled.map((connection) => connection.closed));
    expect((await completion({ prompt: "hi", max_tokens: 2 })).status).toBe(200);
  });
});

describe("clients that leave", () => {
  test("are logged once as client disconnected, not as failed requests", async () => {
    const before = server.logs().split("client disconnected").length;
    const leaving = await connect(server.url);
    leaving.write(`${HEAD}Content-Length: 1000\r\n\r\n{"prompt": `);
    await Bun.sleep(100);
    leaving.end();
    await leaving.closed;
    const controller = new AbortController();
    const stream = await fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ prompt: "go", max_tokens: 400, ignore_eos: true, stream: true }),
      signal: controller.signal,
    });
    await stream.body!.getReader().read();
    controller.abort();
    await Bun.sleep(300);
    expect(server.logs().split("client disconnected").length - before).toBe(2);
    expect(server.logs()).not.toContain("request failed");
  });
});

describe("--allowed-hosts", () => {
  test("the listed names are served, any other is a 421", async () => {
    const status = async (host: string) => (await fetch(`${server.url}/v1/models`, { headers: { Host: host } })).status;
    expect(await status("api.example")).toBe(200);
    expect(await status("127.0.0.1:1234")).toBe(200);
    expect(await status("localhost")).toBe(421);
  });
});

describe("a streamed answer", () => {
  test("outlives the keep-alive timeout while its chunks flow", async () => {
    const numChunks = 10;
    // Bun's own: its idle timeout cuts such a stream after 4 to 8 s, chunks or not.
    const bun = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      idleTimeout: 1,
      fetch: withConnectionLimits(
        async () => {
          let sent = 0;
          const body = new ReadableStream<Uint8Array>({
            async pull(controller) {
              await Bun.sleep(1000);
              controller.enqueue(new TextEncoder().encode(`data: ${sent}\n\n`));
              if (++sent === numChunks) controller.close();
            },
          });
          return new Response(body, { headers: { "Content-Type": "text/event-stream" } });
        },
        { keepAliveTimeoutSeconds: 1, limitConcurrency: 10 },
        () => {},
      ),
    });
    try {
      const response = await fetch(`http://127.0.0.1:${bun.port}/`, { method: "POST" });
      const text = await response.text();
      expect(text.match(/data: \d+/g)).toHaveLength(numChunks);
    } finally {
      bun.stop(true);
    }
  }, 30_000);
});
