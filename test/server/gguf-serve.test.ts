// `vllm-ts serve model.gguf` end to end: the file is the model, named after the file, and chat
// requests are rendered with the chat template in the file's own metadata.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { writeGgufModel } from "../helpers/gguf-model-writer.ts";
import { str } from "../helpers/gguf-writer.ts";
import { type RandomModel, writeRandomModel } from "../helpers/random-model.ts";
import { type ServerProcess, startServer } from "../helpers/server-process.ts";

/** Not the folder's template: a chat rendered by it proves the server read the GGUF's. */
const GGUF_TEMPLATE =
  "{% for message in messages %}<|im_start|>{{ message.role }}\nfrom gguf: {{ message.content }}<|im_end|>\n{% endfor %}" +
  "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

let model: RandomModel;
let server: ServerProcess;

beforeAll(async () => {
  model = await writeRandomModel({
    architecture: "Qwen3ForCausalLM",
    hiddenSize: 64,
    intermediateSize: 96,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    maxPositionEmbeddings: 512,
  });
  const file = await writeGgufModel(model, {
    type: "F32",
    file: join(model.dir, "tiny-qwen3.gguf"),
    metadata: { "tokenizer.chat_template": str(GGUF_TEMPLATE) },
  });
  server = await startServer(file);
});

afterAll(async () => {
  await server?.stop();
  await rm(model.dir, { recursive: true, force: true });
});

interface Answer {
  usage: { prompt_tokens: number; completion_tokens: number };
  choices: { text?: string; message?: { content: string } }[];
}

async function post(path: string, body: unknown): Promise<Answer> {
  const response = await fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as Answer;
}

test("serve model.gguf names the model after the file and chats through the file's chat template", async () => {
  const models = (await (await fetch(`${server.url}/v1/models`)).json()) as { data: { id: string }[] };
  expect(models.data.map((m) => m.id)).toEqual(["tiny-qwen3"]);

  const sampling = { temperature: 0, max_tokens: 6, ignore_eos: true };
  const chat = await post("/v1/chat/completions", {
    model: "tiny-qwen3",
    messages: [{ role: "user", content: "hello there" }],
    ...sampling,
  });
  const rendered = "<|im_start|>user\nfrom gguf: hello there<|im_end|>\n<|im_start|>assistant\n";
  const completion = await post("/v1/completions", { model: "tiny-qwen3", prompt: rendered, ...sampling });
  expect(chat.usage.prompt_tokens).toBe(completion.usage.prompt_tokens);
  expect(chat.choices[0]!.message!.content).toBe(completion.choices[0]!.text!);
  expect(chat.usage.completion_tokens).toBe(6);
});
