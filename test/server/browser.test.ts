// The server as a web page on another origin meets it: headless Chromium loads a page from a second
// small server, whose script streams a chat reply from vllm-ts with fetch and the body's reader,
// sending an API key (so the browser asks a CORS preflight first), then posts what it read back.
// The stream must come in several chunks that add up to the text a plain request gets; a server
// whose --allowed-origins names another origin must leave the page's fetch failing, unsent.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromiumCommand, requireChromium } from "../helpers/chromium.ts";
import { type ServerProcess, startServer, writeServerTestModel } from "../helpers/server-process.ts";

const API_KEY = "browser-test-key";
const MODEL = "tiny";
const CHAT = {
  model: MODEL,
  messages: [{ role: "user", content: "Tell me about the sea." }],
  max_tokens: 12,
  temperature: 0,
  ignore_eos: true,
};

/** What the page read from one server. */
interface PageResult {
  status: number | null;
  /** Content deltas received (SSE events with text). */
  chunks: number;
  text: string;
  /** Why fetch or the reader failed, as the browser words it; null if nothing did. */
  error: string | null;
}

let open: ServerProcess;
let restricted: ServerProcess;
/** What the page read from each server, by name. */
let results: Record<string, PageResult>;

beforeAll(async () => {
  requireChromium();
  const modelDir = await writeServerTestModel();
  const common = ["--served-model-name", MODEL, "--api-key", API_KEY];
  open = await startServer(modelDir, common);
  restricted = await startServer(modelDir, [...common, "--allowed-origins", "https://elsewhere.example"]);
  results = await runPage({ open: open.url, restricted: restricted.url });
}, 30_000);

afterAll(async () => {
  await open?.stop();
  await restricted?.stop();
});

/** The page: streams the chat from each server in turn and posts the results to /result. */
function page(servers: Record<string, string>): string {
  const script = `
    const servers = ${JSON.stringify(servers)};
    async function streamChat(server) {
      const result = { status: null, chunks: 0, text: "", error: null };
      try {
        const response = await fetch(server + "/v1/chat/completions", {
          method: "POST",
          headers: { "Content-Type": "application/json", Authorization: "Bearer ${API_KEY}" },
          body: JSON.stringify({ ...${JSON.stringify(CHAT)}, stream: true }),
        });
        result.status = response.status;
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let pending = "";
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          pending += decoder.decode(value, { stream: true });
          const events = pending.split("\\n\\n");
          pending = events.pop();
          for (const event of events) {
            const data = event.slice("data: ".length);
            if (data === "[DONE]") continue;
            const content = JSON.parse(data).choices[0]?.delta?.content;
            if (content) {
              result.chunks++;
              result.text += content;
            }
          }
        }
      } catch (error) {
        result.error = String(error);
      }
      return result;
    }
    const results = {};
    for (const [name, server] of Object.entries(servers)) results[name] = await streamChat(server);
    await fetch("/result", { method: "POST", body: JSON.stringify(results) });
  `;
  return `<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><script type="module">${script}</script></body></html>`;
}

/** Runs the page in headless Chromium; resolves with what it posted back. */
async function runPage(servers: Record<string, string>): Promise<Record<string, PageResult>> {
  const { promise: posted, resolve } = Promise.withResolvers<Record<string, PageResult>>();
  const pageServer = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      if (new URL(request.url).pathname === "/result") {
        resolve((await request.json()) as Record<string, PageResult>);
        return new Response("thanks");
      }
      return new Response(page(servers), { headers: { "Content-Type": "text/html; charset=utf-8" } });
    },
  });
  const profile = mkdtempSync(join(tmpdir(), "vllm-ts-browser-"));
  const chromium = Bun.spawn(chromiumCommand(profile, `http://127.0.0.1:${pageServer.port}/`), {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  try {
    const exitedFirst = chromium.exited.then(async (code) => {
      throw new Error(
        `chromium exited (${code}) before the page reported:\n${await new Response(chromium.stderr).text()}`,
      );
    });
    return await Promise.race([posted, exitedFirst]);
  } finally {
    chromium.kill();
    await chromium.exited;
    pageServer.stop(true);
    rmSync(profile, { recursive: true, force: true });
  }
}

test("a page on another origin streams a chat reply, sent with an API key, in chunks that make a plain request's text", async () => {
  const plain = await fetch(`${open.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify(CHAT),
  });
  const expected = ((await plain.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message
    .content;
  expect(results.open).toMatchObject({ status: 200, error: null, text: expected });
  expect(results.open!.chunks).toBeGreaterThan(1);
});

test("a server whose --allowed-origins leaves the page's origin out refuses the preflight: the chat is never sent", () => {
  expect(results.restricted).toMatchObject({ status: null, chunks: 0, text: "" });
  expect(results.restricted!.error).toContain("Failed to fetch");
  expect(restricted.logs()).not.toContain("request chatcmpl-");
});
