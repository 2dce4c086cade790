// The tokenizer of a resolved model: the part of a model that the engine core's thread does not
// load (text lives on the API side).
import { resolve } from "node:path";
import { DEMO_MODEL_NAME } from "./demo.ts";
import { demoTokenizer } from "./demo-tokenizer.ts";
import { loadGgufTokenizer } from "./gguf/gguf-model.ts";
import type { ModelSource } from "./load-model.ts";
import { loadTokenizer, type ModelTokenizer } from "./tokenizer.ts";

/**
 * The model's own tokenizer (its folder's tokenizer.json, or its GGUF file's metadata), or vLLM's `--tokenizer`: another local folder, or "vllm-ts-demo"
 * for the embedded Qwen3 tokenizer (lets a config-only model, e.g. a benchmark shape with
 * dummy weights, be served).
 */
export async function loadModelTokenizer(
  source: Pick<ModelSource, "dir" | "ggufFile">,
  tokenizer?: string,
): Promise<ModelTokenizer> {
  if (tokenizer === DEMO_MODEL_NAME) return demoTokenizer();
  if (tokenizer !== undefined) return loadTokenizer(resolve(tokenizer));
  if (source.ggufFile !== null) return loadGgufTokenizer(source.ggufFile);
  return source.dir === null ? demoTokenizer() : loadTokenizer(source.dir);
}
