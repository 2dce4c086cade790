// A Gemma 3 model served with its real tokenizer and chat template: chat completions render the
// template (the system prompt folded into the first user turn, as Gemma has no system role) and
// the model's turn ends at <end_of_turn>.
import { afterAll, beforeAll, expect, test } from "bun:test";
import OpenAI from "openai";
import { loadTokenizer } from "../../src/model/tokenizer.ts";
import { writeRealTokenizerModel } from "../helpers/real-tokenizer-model.ts";
import { type ServerProcess, startServer } from "../helpers/server-process.ts";

let server: ServerProcess;
let openai: OpenAI;
let modelDir: string;

beforeAll(async () => {
  const model = await writeRealTokenizerModel("gemma3", {
    architecture: "Gemma3ForCausalLM",
    headDim: 16,
    tieWordEmbeddings: true,
    slidingWindow: 16,
    slidingWindowPattern: 2,
    maxPositionEmbeddings: 512,
    seed: 4,
  });
  modelDir = model.dir;
  server = await startServer(model.dir, ["--served-model-name", "gemma"]);
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
});

afterAll(async () => {
  await server?.stop();
});

test("the prompt is Gemma's template: the system prompt opens the user's turn, the model's turn follows", async () => {
  const completion = await openai.chat.completions.create({
    model: "gemma",
    messages: [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Why is the sky blue?" },
    ],
    max_tokens: 4,
    temperature: 0,
  });
  const tokenizer = await loadTokenizer(modelDir);
  const expected = "<bos><start_of_turn>user\nBe brief.\n\nWhy is the sky blue?<end_of_turn>\n<start_of_turn>model\n";
  expect(completion.usage!.prompt_tokens).toBe(tokenizer.encode(expected, { addSpecialTokens: false }).length);
  expect(completion.choices[0]!.message.content!.length).toBeGreaterThan(0);
});

test("roles that do not alternate are the template's own error, a 400 naming it", async () => {
  const error = await openai.chat.completions
    .create({
      model: "gemma",
      messages: [
        { role: "user", content: "Hi" },
        { role: "user", content: "Again" },
      ],
      max_tokens: 4,
    })
    .then(
      () => null,
      (rejection: unknown) => rejection,
    );
  expect(error).toBeInstanceOf(OpenAI.BadRequestError);
  expect((error as Error).message).toContain("Conversation roles must alternate");
});
