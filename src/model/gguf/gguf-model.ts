// A model in one GGUF file: its config, generation defaults, weights and tokenizer, each read from
// the file the way a Hugging Face folder's loaders read their files.
import type { ModelConfig } from "../config.ts";
import { ModelLoadError } from "../errors.ts";
import type { GenerationConfig } from "../generation-config.ts";
import { ModelTokenizer } from "../tokenizer.ts";
import { ggufModelConfig } from "./gguf-config.ts";
import { type GgufFile, readGgufFile } from "./gguf-file.ts";
import { type GgufTensorStore, openGgufTensorStore } from "./gguf-tensor-store.ts";
import { ggufTokenizerFiles } from "./gguf-tokenizer.ts";

/** The file, refused when it is one part of a split model (llama.cpp's gguf-split). */
export function openGgufFile(file: string): GgufFile {
  const gguf = readGgufFile(file);
  const parts = gguf.metadata.get("split.count");
  if (parts !== undefined && Number(parts) > 1) {
    throw new ModelLoadError(
      file,
      `one of ${parts} parts of a split model; join them into one file first (llama-gguf-split --merge)`,
    );
  }
  return gguf;
}

export function ggufModel(file: string): { config: ModelConfig; generationConfig: GenerationConfig } {
  const config = ggufModelConfig(openGgufFile(file));
  return {
    config,
    generationConfig: {
      eosTokenIds: config.eosTokenIds,
      ...(config.bosTokenId === null ? {} : { bosTokenId: config.bosTokenId }),
    },
  };
}

/**
 * The weights under Hugging Face names; the q/k rows of llama files (Llama, Mistral, Mixtral),
 * permuted by llama.cpp's converter, put back.
 */
export function ggufTensorStore(file: string, config: ModelConfig): GgufTensorStore {
  const mixtral = config.architecture === "MixtralForCausalLM";
  const permuted = config.architecture === "LlamaForCausalLM" || mixtral;
  return openGgufTensorStore(openGgufFile(file), {
    permutedHeads: permuted ? { numHeads: config.numHeads, numKvHeads: config.numKvHeads } : null,
    experts: config.moe && { numExperts: config.moe.numExperts, mixtral },
  });
}

export function loadGgufTokenizer(file: string): ModelTokenizer {
  const { tokenizerJson, tokenizerConfig } = ggufTokenizerFiles(openGgufFile(file));
  try {
    return ModelTokenizer.fromJSON(tokenizerJson, tokenizerConfig);
  } catch (error) {
    throw new ModelLoadError(file, `the tokenizer in its metadata is not usable (${(error as Error).message})`);
  }
}
