// The tokenizer of a resolved model, and the whole model with it for in-process use (the
// offline API, tests): the parts that the engine core's thread does not load.
import type { Backend } from "../backend/backend.ts";
import { demoTokenizer } from "./demo-tokenizer.ts";
import { loadModelWeights, resolveModel, type LoadedModel, type LoadModelOptions, type ModelSource } from "./load-model.ts";
import { loadTokenizer, type ModelTokenizer } from "./tokenizer.ts";

export async function loadModelTokenizer(source: ModelSource): Promise<ModelTokenizer> {
  return source.dir === null ? demoTokenizer() : loadTokenizer(source.dir);
}

export async function loadModel(backend: Backend, model: string | undefined, options: LoadModelOptions = {}): Promise<LoadedModel> {
  const source = await resolveModel(model);
  const tokenizer = await loadModelTokenizer(source);
  return { ...loadModelWeights(backend, source, options), tokenizer };
}
