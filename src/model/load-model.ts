// Turns a model reference (a local Hugging Face directory, a GGUF file, a Hub repo id fetched
// through the Hugging Face cache by hub/, or nothing for the embedded demo) into its parts: config and
// generation defaults (ModelSource), weights in device memory (EngineModel). The tokenizer loads
// apart (load-tokenizer.ts) because the engine core and the API side live on different threads
// and only the API side needs it.
import { existsSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { activationDtype } from "../backend/activation-dtype.ts";
import type { Backend } from "../backend/backend.ts";
import { type DType, type DtypeFlagName, dtypeOfFlagName } from "../backend/dtype.ts";
import type { QuantFormat } from "../backend/weight-format.ts";
import { loadModelConfig, type ModelConfig } from "./config.ts";
import { DEMO_MODEL_NAME, DEMO_SEED, demoConfig } from "./demo.ts";
import { ModelLoadError } from "./errors.ts";
import { type GenerationConfig, loadGenerationConfig } from "./generation-config.ts";
import { ggufModel, ggufTensorStore } from "./gguf/gguf-model.ts";
import { type HubReference, parseHubReference, resolveHubGgufFile, resolveHubModel } from "./hub/hub-model.ts";
import { openSafetensors } from "./safetensors.ts";
import type { ModelTokenizer } from "./tokenizer.ts";
import { dummyWeights, loadWeightsFromStore, type ModelWeights, type StorageChoice } from "./weights.ts";

export type DtypeOption = "auto" | DtypeFlagName;
export type LoadFormat = "auto" | "dummy";

export interface LoadModelOptions {
  /** Weight storage dtype; "auto" keeps the checkpoint's torch_dtype. */
  dtype?: DtypeOption;
  /** "dummy" ignores the checkpoint's tensors and uses random weights of the config's shapes. */
  loadFormat?: LoadFormat;
  /** Seed of dummy weights. */
  seed?: number;
  /** Quantize the matrices on load into this format (--quantization). */
  quantization?: QuantFormat;
}

/** What describes a model, without its weights. */
export interface ModelSource {
  name: string;
  /** The Hugging Face model folder; null for a GGUF file and for the embedded demo model. */
  dir: string | null;
  /** The model's GGUF file, when it is one. */
  ggufFile: string | null;
  config: ModelConfig;
  generationConfig: GenerationConfig;
}

/** What the engine core needs: the model on the device. */
export interface EngineModel extends ModelSource {
  weights: ModelWeights;
  /** The dtype activations are computed in on this backend. */
  actDtype: DType;
}

export interface LoadedModel extends EngineModel {
  tokenizer: ModelTokenizer;
}

/**
 * vLLM's --generation-config: "auto" takes the model's generation_config.json, "vllm" ignores
 * it (engine defaults; EOS from config.json), a folder takes that folder's file instead.
 */
export async function withGenerationConfig(source: ModelSource, option: string | undefined): Promise<ModelSource> {
  if (option === undefined || option === "auto") return source;
  if (option === "vllm") return { ...source, generationConfig: { eosTokenIds: source.config.eosTokenIds } };
  const dir = resolve(option);
  if (!existsSync(join(dir, "generation_config.json"))) {
    throw new ModelLoadError(
      join(dir, "generation_config.json"),
      'file not found (--generation-config takes "auto", "vllm" or a folder holding generation_config.json)',
    );
  }
  return { ...source, generationConfig: await loadGenerationConfig(dir) };
}

/** Where to find the model's GGUF file: vLLM's --gguf-file (a file of a repo or folder). */
export interface ResolveModelOptions {
  ggufFile?: string;
}

function ggufSource(name: string, file: string): ModelSource {
  return { name, dir: null, ggufFile: file, ...ggufModel(file) };
}

async function folderSource(name: string, dir: string): Promise<ModelSource> {
  return {
    name,
    dir,
    ggufFile: null,
    config: await loadModelConfig(dir),
    generationConfig: await loadGenerationConfig(dir),
  };
}

async function hubSource(reference: HubReference, ggufFile: string | undefined): Promise<ModelSource> {
  if (reference.quant === undefined && ggufFile === undefined) {
    return folderSource(reference.repo, await resolveHubModel(reference));
  }
  const name = reference.quant === undefined ? reference.repo : `${reference.repo}:${reference.quant}`;
  return ggufSource(name, await resolveHubGgufFile(reference, ggufFile));
}

export async function resolveModel(model: string | undefined, options: ResolveModelOptions = {}): Promise<ModelSource> {
  if (model === undefined || model === DEMO_MODEL_NAME) {
    const config = demoConfig();
    return {
      name: DEMO_MODEL_NAME,
      dir: null,
      ggufFile: null,
      config,
      generationConfig: { eosTokenIds: config.eosTokenIds },
    };
  }
  const path = resolve(model);
  // An existing path wins, so a local copy is never shadowed by a Hub repo of the same name.
  const hubReference = existsSync(path) ? null : parseHubReference(model);
  if (hubReference !== null) return hubSource(hubReference, options.ggufFile);
  if (existsSync(path) && statSync(path).isFile() && path.endsWith(".gguf")) {
    return ggufSource(basename(path, ".gguf"), path);
  }
  if (!existsSync(path) || !statSync(path).isDirectory()) {
    throw new ModelLoadError(
      path,
      "not a model (expected a local Hugging Face model folder with config.json, or a .gguf file)",
    );
  }
  if (options.ggufFile !== undefined) {
    const file = join(path, options.ggufFile);
    if (!existsSync(file)) throw new ModelLoadError(file, "file not found (named by --gguf-file)");
    return ggufSource(basename(file, ".gguf"), file);
  }
  return folderSource(basename(path), path);
}

/** The weights of a model's checkpoint: its GGUF file or its folder's safetensors. */
function checkpointWeights(backend: Backend, source: ModelSource, storage: StorageChoice): ModelWeights {
  const { config, ggufFile, dir } = source;
  if (ggufFile !== null) {
    return loadWeightsFromStore(backend, config, ggufTensorStore(ggufFile, config), ggufFile, storage);
  }
  return loadWeightsFromStore(backend, config, openSafetensors(dir!), dir!, storage);
}

export function loadModelWeights(backend: Backend, source: ModelSource, options: LoadModelOptions = {}): EngineModel {
  const { config } = source;
  const dtype = options.dtype && options.dtype !== "auto" ? dtypeOfFlagName(options.dtype) : config.dtype;
  const storage = { dtype, quantization: options.quantization ?? null };
  const weights =
    source.ggufFile === null && source.dir === null
      ? dummyWeights(backend, config, storage, DEMO_SEED)
      : options.loadFormat === "dummy"
        ? dummyWeights(backend, config, storage, options.seed ?? 0)
        : checkpointWeights(backend, source, storage);
  return { ...source, weights, actDtype: activationDtype(backend, dtype) };
}
