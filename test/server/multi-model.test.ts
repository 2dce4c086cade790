// Several models in one server: each has its own engine, and a request's `model` field routes it.
// Two random models of different architectures and seeds answer differently, so a completion
// that equals one model's own (served alone, at temperature 0) proves where it went.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { TINY_SHAPE, writeRandomModel } from "../helpers/random-model.ts";
import { metricValue, type ServerProcess, startServer, writeServerTestModel } from "../helpers/server-process.ts";

const EXECUTABLE = resolve(import.meta.dir, "../../dist/vllm-ts");

let llamaDir: string;
let qwenDir: string;
/** Serves both: --model llamaDir --model qwenDir, named "llama" and "qwen". */
let both: ServerProcess;
let llamaAlone: ServerProcess;
let qwenAlone: ServerProcess;
/** Serves both from a --models-config file: "qwen-short" (max model len 128, 8 MiB of KV cache), then Llama unnamed. */
let fromConfig: ServerProcess;

beforeAll(async () => {
  llamaDir = (
    await writeRandomModel({
      architecture: "LlamaForCausalLM",
      ...TINY_SHAPE,
      maxPositionEmbeddings: 256,
      seed: 7,
    })
  ).dir;
  qwenDir = await writeServerTestModel();
  const configFile = join(mkdtempSync(join(tmpdir(), "vllm-ts-models-")), "models.json");
  writeFileSync(
    configFile,
    JSON.stringify([
      { model: qwenDir, servedModelName: "qwen-short", maxModelLen: 128, kvCacheMemory: "8MiB" },
      { model: llamaDir },
    ]),
  );
  [both, llamaAlone, qwenAlone, fromConfig] = await Promise.all([
    startServer(null, [
      "--model",
      llamaDir,
      "--model",
      qwenDir,
      "--served-model-name",
      "llama",
      "--served-model-name",
      "qwen",
    ]),
    startServer(llamaDir),
    startServer(qwenDir),
    startServer(null, ["--models-config", configFile]),
  ]);
  // Six engines start here, more than bun's default hook timeout allows on a small machine.
}, 60_000);

afterAll(async () => {
  await Promise.all([both, llamaAlone, qwenAlone, fromConfig].map((server) => server?.stop()));
});

const post = (server: ServerProcess, path: string, body: unknown) =>
  fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });

interface Completion {
  model: string;
  choices: { text: string }[];
}

async function completionText(server: ServerProcess, model: string | undefined): Promise<string> {
  const response = await post(server, "/v1/completions", {
    model,
    prompt: "hello world",
    max_tokens: 16,
    temperature: 0,
    ignore_eos: true,
  });
  expect(response.status).toBe(200);
  const completion = (await response.json()) as Completion;
  if (model !== undefined) expect(completion.model).toBe(model);
  return completion.choices[0]!.text;
}

async function listModels(server: ServerProcess): Promise<{ id: string; max_model_len: number }[]> {
  return ((await (await fetch(`${server.url}/v1/models`)).json()) as { data: { id: string; max_model_len: number }[] })
    .data;
}

async function expectError(response: Response, status: number, message: RegExp): Promise<void> {
  expect(response.status).toBe(status);
  const { error } = (await response.json()) as { error: { message: string; param: string | null } };
  expect(error.message).toMatch(message);
  expect(error.param).toBe("model");
}

describe("two models from --model, repeated", () => {
  test("GET /v1/models lists both, each with its own max model len", async () => {
    expect((await listModels(both)).map(({ id, max_model_len }) => [id, max_model_len])).toEqual([
      ["llama", 256],
      ["qwen", 512],
    ]);
  });

  test("start-up logs list each model with its architecture and KV cache", () => {
    expect(both.logs()).toMatch(/llama: .*LlamaForCausalLM/);
    expect(both.logs()).toMatch(/qwen: .*Qwen3ForCausalLM/);
    expect(both.logs()).toMatch(/llama: KV cache: \d+ blocks of 16 tokens/);
    expect(both.logs()).toMatch(/qwen: KV cache: \d+ blocks of 16 tokens/);
    expect(both.logs()).toContain(`serving llama, qwen at ${both.url}/v1`);
  });

  test("a completion runs on the model its `model` names, as that model served alone would answer", async () => {
    const [llama, qwen] = await Promise.all([completionText(both, "llama"), completionText(both, "qwen")]);
    expect(llama).not.toBe(qwen);
    expect(llama).toBe(await completionText(llamaAlone, undefined));
    expect(qwen).toBe(await completionText(qwenAlone, undefined));
  });

  test("a chat completion is routed the same way", async () => {
    const chat = async (server: ServerProcess, model: string | undefined) => {
      const body = {
        model,
        messages: [{ role: "user", content: "hi" }],
        max_tokens: 8,
        temperature: 0,
        ignore_eos: true,
      };
      const response = await post(server, "/v1/chat/completions", body);
      expect(response.status).toBe(200);
      return ((await response.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
    };
    expect(await chat(both, "llama")).toBe(await chat(llamaAlone, undefined));
    expect(await chat(both, "qwen")).toBe(await chat(qwenAlone, undefined));
  });

  test("/tokenize and /detokenize use the named model", async () => {
    const tokenize = async (model: string) =>
      (await (await post(both, "/tokenize", { model, prompt: "hello" })).json()) as {
        max_model_len: number;
        tokens: number[];
      };
    expect((await tokenize("llama")).max_model_len).toBe(256);
    const qwen = await tokenize("qwen");
    expect(qwen.max_model_len).toBe(512);
    expect(await (await post(both, "/detokenize", { model: "qwen", tokens: qwen.tokens })).json()).toEqual({
      prompt: "hello",
    });
  });

  test("an unknown model is a 404 that names both served models", async () => {
    await expectError(
      await post(both, "/v1/completions", { model: "gpt-4", prompt: "hi" }),
      404,
      /`gpt-4` does not exist.*`llama`, `qwen`/,
    );
    await expectError(await post(both, "/tokenize", { model: "gpt-4", prompt: "hi" }), 404, /`gpt-4` does not exist/);
  });

  test("a missing model is a 400 when two models are served", async () => {
    await expectError(await post(both, "/v1/completions", { prompt: "hi" }), 400, /model is required.*`llama`, `qwen`/);
    await expectError(
      await post(both, "/v1/chat/completions", { messages: [{ role: "user", content: "hi" }] }),
      400,
      /model is required/,
    );
    await expectError(await post(both, "/detokenize", { tokens: [1] }), 400, /model is required/);
  });

  test("/metrics labels every series with its model, each metric under one header", async () => {
    const before = await metricValue(both.url, "vllm:prompt_tokens_total", "qwen");
    await completionText(both, "llama");
    expect(await metricValue(both.url, "vllm:prompt_tokens_total", "qwen")).toBe(before);
    expect(await metricValue(both.url, "vllm:prompt_tokens_total", "llama")).toBeGreaterThan(0);
    const text = await (await fetch(`${both.url}/metrics`)).text();
    for (const name of [
      "vllm:num_requests_running",
      "vllm:kv_cache_usage_perc",
      "vllm:e2e_request_latency_seconds_count",
    ]) {
      expect(text).toContain(`${name}{model_name="llama"}`);
      expect(text).toContain(`${name}{model_name="qwen"}`);
    }
    expect(text.split("\n").filter((line) => line === "# TYPE vllm:kv_cache_usage_perc gauge")).toHaveLength(1);
  });
});

describe("--models-config", () => {
  test("serves its models in order, with their own names and engine options", async () => {
    expect((await listModels(fromConfig)).map(({ id, max_model_len }) => [id, max_model_len])).toEqual([
      ["qwen-short", 128],
      [basename(llamaDir), 256],
    ]);
    expect(fromConfig.logs()).toMatch(/qwen-short: KV cache: .*, 8\.0 MiB\)/);
    expect(await completionText(fromConfig, "qwen-short")).toBe(await completionText(qwenAlone, undefined));
  });
});

describe("usage errors", () => {
  test("--served-model-name must be given once per model", async () => {
    const child = Bun.spawn(
      [EXECUTABLE, "serve", "--model", llamaDir, "--model", qwenDir, "--served-model-name", "only-one", "--port", "0"],
      { stderr: "pipe", stdout: "ignore" },
    );
    expect(await child.exited).toBe(1);
    expect(await new Response(child.stderr).text()).toContain("--served-model-name is given 1 times for 2 models");
  });
});

describe("shutdown", () => {
  test("SIGTERM stops every engine and exits 0", async () => {
    expect(await both.stop("SIGTERM")).toBe(0);
  });
});
