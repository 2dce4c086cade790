// SIGTERM and SIGINT stop the server gracefully: in-flight streams are ended with an error event,
// the engine shuts down and the process exits 0.
import { describe, expect, test } from "bun:test";
import { startServer, writeServerTestModel } from "../helpers/server-process.ts";

describe("graceful shutdown", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    test(`${signal} with a stream in flight ends the stream and exits 0`, async () => {
      const server = await startServer(await writeServerTestModel());
      const response = await fetch(`${server.url}/v1/completions`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ prompt: "hello", max_tokens: 500, ignore_eos: true, stream: true }),
      });
      const reader = response.body!.getReader();
      await reader.read();
      const exitCode = server.stop(signal);
      // The stream ends at once, telling the client why, rather than running on to 500 tokens.
      let tail = "";
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read())
        tail += new TextDecoder().decode(chunk.value);
      expect(tail).toContain("the server is shutting down");
      expect(tail.endsWith("data: [DONE]\n\n")).toBe(true);
      expect(await exitCode).toBe(0);
      expect(server.logs()).toContain(`${signal}: shutting down`);
    });
  }
});
