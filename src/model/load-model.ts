// Turns a model reference (a local Hugging Face directory, or nothing for the embedded demo) into
// a loaded model: config, tokenizer, generation defaults and weights in device memory.
import { existsSync, statSync } from "node:fs";
import { basename, resolve } from "node:path";
import type { Backend } from "../backend/backend.ts";
import type { DType } from "../backend/dtype.ts";
import { loadModelConfig, type ModelConfig, type WeightDtype } from "./config.ts";
import { DEMO_MODEL_NAME, DEMO_SEED, demoConfig, demoTokenizerFiles } from "./demo.ts";
import { ModelLoadError } from "./errors.ts";
import { loadGenerationConfig, type GenerationConfig } from "./generation-config.ts";
import { openSafetensors } from "./safetensors.ts";
import { loadTokenizer, ModelTokenizer } from "./tokenizer.ts";
import { dummyWeights, loadWeightsFromSafetensors, type ModelWeights } from "./weights.ts";

export type DtypeOption = "auto" | WeightDtype;
export type LoadFormat = "auto" | "dummy";

export interface LoadModelOptions {
  /** Weight storage dtype; "auto" keeps the checkpoint's torch_dtype. */
  dtype?: DtypeOption;
  /** "dummy" ignores the checkpoint's tensors and uses random weights of the config's shapes. */
  loadFormat?: LoadFormat;
  /** Seed of dummy weights. */
  seed?: number;
}

export interface LoadedModel {
  name: string;
  config: ModelConfig;
  tokenizer: ModelTokenizer;
  generationConfig: GenerationConfig;
  weights: ModelWeights;
  /** The dtype activations are computed in on this backend. */
  actDtype: DType;
}

const dtypeOfWeight: Record<WeightDtype, DType> = { float32: "f32", float16: "f16", bfloat16: "bf16" };

/** The CPU backend computes in f32 whatever the weights; the CUDA backend in the weights' dtype. */
export function activationDtype(backend: Backend, weightDtype: DType): DType {
  return backend.name === "cpu" ? "f32" : weightDtype;
}

export async function loadModel(backend: Backend, model: string | undefined, options: LoadModelOptions = {}): Promise<LoadedModel> {
  if (model === undefined || model === DEMO_MODEL_NAME) return loadDemoModel(backend, options);
  const dir = resolve(model);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new ModelLoadError(dir, "not a model directory (expected a local Hugging Face model folder with config.json)");
  }
  const config = await loadModelConfig(dir);
  const tokenizer = await loadTokenizer(dir);
  const generationConfig = await loadGenerationConfig(dir);
  const dtype = dtypeOfWeight[options.dtype && options.dtype !== "auto" ? options.dtype : config.dtype];
  const weights =
    options.loadFormat === "dummy"
      ? dummyWeights(backend, config, dtype, options.seed ?? 0)
      : loadWeightsFromSafetensors(backend, config, openSafetensors(dir), dir, dtype);
  return { name: basename(dir), config, tokenizer, generationConfig, weights, actDtype: activationDtype(backend, dtype) };
}

function loadDemoModel(backend: Backend, options: LoadModelOptions): LoadedModel {
  const config = demoConfig();
  const { tokenizerJson, tokenizerConfig } = demoTokenizerFiles();
  const tokenizer = ModelTokenizer.fromJSON(tokenizerJson, tokenizerConfig);
  const dtype = dtypeOfWeight[options.dtype && options.dtype !== "auto" ? options.dtype : config.dtype];
  const weights = dummyWeights(backend, config, dtype, options.seed ?? DEMO_SEED);
  return {
    name: DEMO_MODEL_NAME,
    config,
    tokenizer,
    generationConfig: { eosTokenIds: config.eosTokenIds },
    weights,
    actDtype: activationDtype(backend, dtype),
  };
}
