// A failure after a stream's headers are sent arrives as the protocol's own error event: the
// Responses API's `error` event (numbered in the sequence), Anthropic's `event: error`. Each
// server's third model step fails (VLLM_TS_INJECT_STEP_FAULT), after the stream has begun.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { type ServerProcess, startServer, writeServerTestModel } from "../helpers/server-process.ts";

let servers: ServerProcess[] = [];

beforeAll(async () => {
  const model = await writeServerTestModel();
  servers = await Promise.all(
    [0, 1].map(() => startServer(model, ["--served-model-name", "tiny"], { VLLM_TS_INJECT_STEP_FAULT: "3" })),
  );
});

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

/** The stream's events as [name, data] pairs. */
async function streamedEvents(url: string, body: object): Promise<[string, Record<string, unknown>][]> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ ...body, stream: true }),
  });
  expect(response.status).toBe(200);
  const text = await response.text();
  return text
    .trim()
    .split("\n\n")
    .map((event) => {
      const [nameLine, dataLine] = event.split("\n");
      return [nameLine!.replace(/^event: /, ""), JSON.parse(dataLine!.replace(/^data: /, ""))];
    });
}

test("the Responses API ends a failed stream with a numbered error event", async () => {
  const events = await streamedEvents(`${servers[0]!.url}/v1/responses`, {
    input: "hello there",
    max_output_tokens: 8,
  });
  const [name, data] = events.at(-1)!;
  expect(name).toBe("error");
  expect(data).toMatchObject({ type: "error", code: "InternalServerError", sequence_number: events.length - 1 });
  expect(data.message).toContain("a fault injected for testing");
  // The stream had begun: the error follows the response's opening events.
  expect(events[0]![0]).toBe("response.created");
  expect(events.some(([type]) => type === "response.completed")).toBe(false);
  expect(events.map(([, event]) => event.sequence_number)).toEqual(events.map((_, i) => i));
});

test("the Messages API ends a failed stream with Anthropic's error event", async () => {
  const events = await streamedEvents(`${servers[1]!.url}/v1/messages`, {
    model: "tiny",
    max_tokens: 8,
    messages: [{ role: "user", content: "hello there" }],
  });
  const [name, data] = events.at(-1)!;
  expect(name).toBe("error");
  expect(data).toEqual({
    type: "error",
    error: { type: "api_error", message: expect.stringContaining("a fault injected for testing") },
  });
  expect(events[0]![0]).toBe("message_start");
  expect(events.some(([type]) => type === "message_stop")).toBe(false);
});
