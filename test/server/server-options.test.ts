// The serve options that change what clients see: the API key, the pending-request bound and a
// chat template of one's own (which also shows chat_template_kwargs reaching the template).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { metricValue, type ServerProcess, startServer, writeServerTestModel } from "../helpers/server-process.ts";

const API_KEY = "sk-test-key";
/** Says whether the `brief` kwarg arrived, so a test can see it in the rendered prompt. */
const TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}" +
  "{% if brief %}{{ 'be brief\\n' }}{% endif %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

let server: ServerProcess;

beforeAll(async () => {
  const templateFile = join(mkdtempSync(join(tmpdir(), "vllm-ts-template-")), "template.jinja");
  writeFileSync(templateFile, TEMPLATE);
  server = await startServer(
    await writeServerTestModel(),
    ["--max-pending-requests", "2", "--chat-template", templateFile],
    { VLLM_API_KEY: API_KEY },
  );
});

afterAll(async () => {
  await server?.stop();
});

const completion = (headers: Record<string, string>, body: unknown = { prompt: "hi", max_tokens: 2 }) =>
  fetch(`${server.url}/v1/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
  });

describe("--api-key (here from VLLM_API_KEY)", () => {
  test("a missing or wrong key is a 401 in OpenAI's shape", async () => {
    const missing = await completion({});
    expect(missing.status).toBe(401);
    expect(((await missing.json()) as { error: { message: string } }).error.message).toContain("Authorization: Bearer");
    expect((await completion({ Authorization: "Bearer wrong" })).status).toBe(401);
  });

  test("the right key passes, through the openai client too", async () => {
    expect((await completion({ Authorization: `Bearer ${API_KEY}` })).status).toBe(200);
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: API_KEY });
    expect((await client.models.list()).data).toHaveLength(1);
  });

  test("health and metrics stay open, as in vLLM", async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect((await fetch(`${server.url}/metrics`)).status).toBe(200);
  });
});

describe("--max-pending-requests", () => {
  test("a request that alone passes the bound is a 400 naming it, and nothing of it runs", async () => {
    const promptTokens = await metricValue(server.url, "vllm:prompt_tokens_total");
    const response = await completion(
      { Authorization: `Bearer ${API_KEY}` },
      { prompt: ["a", "b", "c"], max_tokens: 2 },
    );
    expect(response.status).toBe(400);
    expect(await metricValue(server.url, "vllm:prompt_tokens_total")).toBe(promptTokens);
    expect(((await response.json()) as { error: { message: string } }).error.message).toContain(
      "--max-pending-requests 2",
    );
    expect(
      (await completion({ Authorization: `Bearer ${API_KEY}` }, { prompt: ["a", "b"], max_tokens: 2 })).status,
    ).toBe(200);
  });
});

describe("--chat-template", () => {
  test("replaces the tokenizer's template, and chat_template_kwargs reach it", async () => {
    const messages = [{ role: "user", content: "hello" }];
    const tokenize = async (extra: object) =>
      (await (
        await fetch(`${server.url}/tokenize`, { method: "POST", body: JSON.stringify({ messages, ...extra }) })
      ).json()) as { tokens: number[] };
    const detokenize = async (tokens: number[]) =>
      (
        (await (
          await fetch(`${server.url}/detokenize`, { method: "POST", body: JSON.stringify({ tokens }) })
        ).json()) as { prompt: string }
      ).prompt;
    expect(await detokenize((await tokenize({})).tokens)).toBe(
      "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n",
    );
    expect(await detokenize((await tokenize({ chat_template_kwargs: { brief: true } })).tokens)).toBe(
      "<|im_start|>user\nhello<|im_end|>\nbe brief\n<|im_start|>assistant\n",
    );
  });
});
