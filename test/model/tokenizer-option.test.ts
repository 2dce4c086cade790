// --tokenizer: a model may be served with another tokenizer than its own.
import { describe, expect, test } from "bun:test";
import { resolveModel } from "../../src/model/load-model.ts";
import { loadModelTokenizer } from "../../src/model/load-tokenizer.ts";
import { writeRandomModel } from "../helpers/random-model.ts";

describe("--tokenizer", async () => {
  const model = await writeRandomModel();
  const other = await writeRandomModel({ seed: 9 });
  const source = await resolveModel(model.dir);

  test("by default the model's own tokenizer", async () => {
    expect((await loadModelTokenizer(source)).vocabSize).toBeLessThan(300);
  });

  test("vllm-ts-demo gives the embedded Qwen3 tokenizer", async () => {
    const tokenizer = await loadModelTokenizer(source, "vllm-ts-demo");
    expect(tokenizer.encode("Hello world")).toEqual([9707, 1879]);
  });

  test("a folder gives that folder's tokenizer; a folder without one names the file", async () => {
    expect((await loadModelTokenizer(source, other.dir)).encode("abc")).toEqual(
      (await loadModelTokenizer(await resolveModel(other.dir))).encode("abc"),
    );
    expect(loadModelTokenizer(source, "/nonexistent-tokenizer-dir")).rejects.toThrow(
      "/nonexistent-tokenizer-dir/tokenizer.json",
    );
  });
});
