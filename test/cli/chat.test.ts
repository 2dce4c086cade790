// `dist/vllm-ts chat` as users run it: piped (one message per line, answers on stdout), against a
// real `serve` process with --url, and at a terminal (a pty) where Ctrl-C stops an answer. Greedy
// answers must be the ones the engine gives for the conversation rendered by the chat template.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { LocalBackend } from "../../src/cli/chat/local-backend.ts";
import { AsyncEngine } from "../../src/engine/async-engine.ts";
import { SamplingParams } from "../../src/engine/sampling-params.ts";
import { type ChatMessage, renderChatTemplate } from "../../src/model/chat-template.ts";
import { hasScript, startPty } from "../helpers/pty-session.ts";
import { startServer, writeServerTestModel } from "../helpers/server-process.ts";
import { PIECE, SLOW_MODEL, type SlowChatServer, startSlowChatServer } from "../helpers/slow-chat-server.ts";

const EXECUTABLE = resolve(import.meta.dir, "../../dist/vllm-ts");
/** Each test starts the executable (and maybe a server) once or twice: seconds on a busy machine. */
const SLOW = 30_000;

let modelDir: string;
let engine: AsyncEngine;
let nextRequest = 0;

beforeAll(async () => {
  if (!existsSync(EXECUTABLE)) throw new Error(`${EXECUTABLE} is missing: run make first`);
  modelDir = await writeServerTestModel();
  engine = await AsyncEngine.start({ model: modelDir, device: "cpu", kvCacheMemory: 16 * 2 ** 20 });
});

afterAll(async () => {
  await engine?.shutdown();
});

const user = (content: string): ChatMessage => ({ role: "user", content });
const assistant = (content: string): ChatMessage => ({ role: "assistant", content });
const system = (content: string): ChatMessage => ({ role: "system", content });

/** The greedy answer to a conversation: the template rendered here, the engine driven directly. */
async function greedyAnswer(
  messages: ChatMessage[],
  maxTokens: number,
  template = engine.tokenizer.chatTemplate,
): Promise<string> {
  const { tokenizer } = engine;
  const prompt = renderChatTemplate(template, {
    messages,
    addGenerationPrompt: true,
    bosToken: tokenizer.bosToken,
    eosToken: tokenizer.eosToken,
  });
  const ids = tokenizer.encode(prompt, { addSpecialTokens: false });
  let text = "";
  for await (const delta of engine.generate(
    `expected-${nextRequest++}`,
    ids,
    new SamplingParams({ temperature: 0, maxTokens }),
  ))
    text += delta.text;
  return text;
}

const localArgs = (...extra: string[]) => ["chat", modelDir, "--device", "cpu", "--kv-cache-memory", "16MiB", ...extra];

async function chatThroughPipe(args: string[], lines: string[]) {
  const child = Bun.spawn([EXECUTABLE, ...args], {
    stdin: new TextEncoder().encode(`${lines.join("\n")}\n`),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { stdout, stderr, code };
}

describe("chat through a pipe, in-process engine", () => {
  test(
    "two messages get two answers, the second with the first turn in its history",
    async () => {
      const first = await greedyAnswer([user("hello")], 8);
      const second = await greedyAnswer([user("hello"), assistant(first), user("how are you")], 8);
      const result = await chatThroughPipe(localArgs("--temperature", "0", "--max-tokens", "8"), [
        "hello",
        "how are you",
      ]);
      expect(result.stderr).not.toContain("error");
      expect(result.code).toBe(0);
      expect(first.length).toBeGreaterThan(0);
      expect(result.stdout).toBe(`${first}\n${second}\n`);
    },
    SLOW,
  );

  test(
    "/reset forgets the turns, /set changes the sampling of the next answers, wrong commands only warn",
    async () => {
      const fresh = await greedyAnswer([user("hello")], 8);
      const followUp = await greedyAnswer([user("hello"), assistant(fresh), user("hello")], 3);
      const lines = [
        "/set temperature 0",
        "hello",
        "/reset",
        "/bogus",
        "hello",
        "/set top_p 2",
        "/set max_tokens 3",
        "hello",
      ];
      const result = await chatThroughPipe(localArgs("--max-tokens", "8"), lines);
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(`${fresh}\n${fresh}\n${followUp}\n`);
      expect(result.stderr).toContain("temperature = 0");
      expect(result.stderr).toContain("conversation cleared");
      expect(result.stderr).toContain("unknown command /bogus");
      expect(result.stderr).toContain('top_p must be a number in (0, 1], got "2"');
    },
    SLOW,
  );

  test(
    "--system and /system put a system prompt first; /reset keeps it",
    async () => {
      const terse = await greedyAnswer([system("Be terse."), user("hello")], 8);
      const poet = await greedyAnswer([system("You are a poet."), user("hello")], 8);
      const lines = ["hello", "/system You are a poet.", "/reset", "hello"];
      const result = await chatThroughPipe(
        localArgs("--temperature", "0", "--max-tokens", "8", "--system", "Be terse."),
        lines,
      );
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(`${terse}\n${poet}\n`);
    },
    SLOW,
  );

  test(
    "--chat-template renders the conversation with the given template instead of the tokenizer's",
    async () => {
      const template = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}assistant:";
      const path = join(mkdtempSync(join(tmpdir(), "vllm-ts-template-")), "template.jinja");
      writeFileSync(path, template);
      const answer = await greedyAnswer([user("hello")], 8, template);
      expect(answer).not.toBe(await greedyAnswer([user("hello")], 8));
      const result = await chatThroughPipe(
        localArgs("--temperature", "0", "--max-tokens", "8", "--chat-template", path),
        ["hello"],
      );
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(`${answer}\n`);
    },
    SLOW,
  );

  test(
    "a bad option value is refused before the model loads",
    async () => {
      const result = await chatThroughPipe(localArgs("--temperature", "hot"), ["hello"]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain("--temperature");
      expect(result.stdout).toBe("");
    },
    SLOW,
  );
});

describe("the in-process backend", () => {
  test("an aborted answer stops early and leaves no request running", async () => {
    const full = await greedyAnswer([user("hello")], 64);
    const backend = new LocalBackend(engine);
    const controller = new AbortController();
    const pieces: string[] = [];
    for await (const piece of backend.stream([user("hello")], { temperature: 0, maxTokens: 64 }, controller.signal)) {
      pieces.push(piece);
      controller.abort();
    }
    expect(pieces).toHaveLength(1);
    expect(full.startsWith(pieces[0]!)).toBe(true);
    expect(full.length).toBeGreaterThan(pieces[0]!.length);
    expect(engine.numUnfinishedSequences).toBe(0);
  });
});

describe("chat --url against a running server", () => {
  test(
    "answers equal the server's own non-streamed chat completions, turn after turn",
    async () => {
      const server = await startServer(modelDir);
      try {
        const complete = async (messages: ChatMessage[]) => {
          const response = await fetch(`${server.url}/v1/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ messages, temperature: 0, max_tokens: 8 }),
          });
          return ((await response.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message
            .content;
        };
        const first = await complete([user("hello")]);
        const second = await complete([user("hello"), assistant(first), user("how are you")]);
        const result = await chatThroughPipe(
          ["chat", "--url", server.url, "--temperature", "0", "--max-tokens", "8"],
          ["hello", "how are you"],
        );
        expect(result.code).toBe(0);
        expect(result.stdout).toBe(`${first}\n${second}\n`);
      } finally {
        await server.stop();
      }
    },
    SLOW,
  );

  describe("a server that streams until the client hangs up", () => {
    let slow: SlowChatServer;
    beforeAll(() => {
      slow = startSlowChatServer();
    });
    afterAll(() => slow.stop());

    test(
      "SIGINT stops the answer and cancels its stream; the partial answer stays in the history",
      async () => {
        const child = Bun.spawn([EXECUTABLE, "chat", "--url", slow.url, "--temperature", "0.5"], {
          stdin: "pipe",
          stdout: "pipe",
          stderr: "pipe",
        });
        const stdout = child.stdout.getReader();
        child.stdin.write("first\n");
        child.stdin.flush();
        expect(new TextDecoder().decode((await stdout.read()).value)).toContain(PIECE.trim());
        child.kill("SIGINT");
        while (slow.cancelled() < 1) await Bun.sleep(10);
        child.stdin.write("second\n");
        child.stdin.flush();
        while (slow.requests.length < 2) await Bun.sleep(10);
        child.kill("SIGINT");
        child.stdin.end();
        expect(await child.exited).toBe(0);
        const [first, second] = slow.requests as { model: string; temperature: number; messages: ChatMessage[] }[];
        expect(first!.model).toBe(SLOW_MODEL);
        expect(first!.temperature).toBe(0.5);
        expect(second!.messages.map((m) => m.role)).toEqual(["user", "assistant", "user"]);
        expect(second!.messages[1]!.content).toStartWith(PIECE);
        stdout.releaseLock();
      },
      SLOW,
    );
  });
});

describe.skipIf(!hasScript())("chat at a terminal", () => {
  let slow: SlowChatServer;
  beforeAll(() => {
    slow = startSlowChatServer();
  });
  afterAll(() => slow.stop());

  test(
    "a typed message gets its answer streamed, and /exit quits",
    async () => {
      const answer = await greedyAnswer([user("hello")], 8);
      const pty = startPty([EXECUTABLE, ...localArgs("--temperature", "0", "--max-tokens", "8")]);
      let at = await pty.waitFor("You");
      pty.type("hello\r");
      at = await pty.waitFor(answer, at);
      await pty.waitFor("You", at);
      pty.type("/exit\r");
      expect(await pty.exited).toBe(0);
    },
    SLOW,
  );

  test(
    "Ctrl-C stops an answer without quitting; Ctrl-C at the prompt quits",
    async () => {
      const cancelledBefore = slow.cancelled();
      const pty = startPty([EXECUTABLE, "chat", "--url", slow.url]);
      let at = await pty.waitFor("You");
      pty.type("hi\r");
      at = await pty.waitFor(PIECE, at);
      pty.type("\x03");
      at = await pty.waitFor("stopped", at);
      expect(slow.cancelled()).toBe(cancelledBefore + 1);
      await pty.waitFor("You", at);
      pty.type("\x03");
      expect(await pty.exited).toBe(0);
    },
    SLOW,
  );

  test(
    "Ctrl-D at the prompt quits",
    async () => {
      const pty = startPty([EXECUTABLE, "chat", "--url", slow.url]);
      await pty.waitFor("You");
      pty.type("\x04");
      expect(await pty.exited).toBe(0);
    },
    SLOW,
  );
});
