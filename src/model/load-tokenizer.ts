// The tokenizer of a resolved model, and the whole model with it for in-process use (the
// offline API, tests): the parts that the engine core's thread does not load.
import type { Backend } from "../backend/backend.ts";
import { resolve } from "node:path";
import { DEMO_MODEL_NAME } from "./demo.ts";
import { demoTokenizer } from "./demo-tokenizer.ts";
import { loadModelWeights, resolveModel, type LoadedModel, type LoadModelOptions, type ModelSource } from "./load-model.ts";
import { loadTokenizer, type ModelTokenizer } from "./tokenizer.ts";

/**
 * The model's own tokenizer, or vLLM's `--tokenizer`: another local folder, or "vllm-ts-demo"
 * for the embedded Qwen3 tokenizer (lets a config-only model, e.g. a benchmark shape with
 * dummy weights, be served).
 */
export async function loadModelTokenizer(source: ModelSource, tokenizer?: string): Promise<ModelTokenizer> {
  if (tokenizer === DEMO_MODEL_NAME) return demoTokenizer();
  if (tokenizer !== undefined) return loadTokenizer(resolve(tokenizer));
  return source.dir === null ? demoTokenizer() : loadTokenizer(source.dir);
}

export async function loadModel(backend: Backend, model: string | undefined, options: LoadModelOptions = {}): Promise<LoadedModel> {
  const source = await resolveModel(model);
  const tokenizer = await loadModelTokenizer(source);
  return { ...loadModelWeights(backend, source, options), tokenizer };
}
