// The model author's default sampling settings from generation_config.json, applied (as vLLM
// does) where a request leaves a parameter unset. The file is optional.

import { join } from "node:path";
import { ModelLoadError, readJsonFile } from "./errors.ts";

export interface GenerationConfig {
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  repetitionPenalty?: number;
  maxNewTokens?: number;
  eosTokenIds?: number[];
  bosTokenId?: number;
}

const NUMERIC_FIELDS = {
  temperature: "temperature",
  topP: "top_p",
  topK: "top_k",
  minP: "min_p",
  repetitionPenalty: "repetition_penalty",
  maxNewTokens: "max_new_tokens",
} as const;

function tokenIdList(value: unknown, file: string, field: string): number[] {
  const ids = Array.isArray(value) ? value : [value];
  if (!ids.every((id) => Number.isInteger(id) && id >= 0)) {
    throw new ModelLoadError(
      file,
      `"${field}" must be a token id or a list of token ids, got ${JSON.stringify(value)}`,
    );
  }
  return ids as number[];
}

export function parseGenerationConfig(json: unknown, file: string): GenerationConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ModelLoadError(file, "expected a JSON object");
  }
  const fields = json as Record<string, unknown>;
  const config: GenerationConfig = {};
  for (const [key, field] of Object.entries(NUMERIC_FIELDS)) {
    const value = fields[field];
    if (value === undefined || value === null) continue;
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw new ModelLoadError(file, `"${field}" must be a number, got ${JSON.stringify(value)}`);
    }
    config[key as keyof typeof NUMERIC_FIELDS] = value;
  }
  if (fields.eos_token_id !== undefined && fields.eos_token_id !== null) {
    config.eosTokenIds = tokenIdList(fields.eos_token_id, file, "eos_token_id");
  }
  if (fields.bos_token_id !== undefined && fields.bos_token_id !== null) {
    config.bosTokenId = tokenIdList(fields.bos_token_id, file, "bos_token_id")[0];
  }
  return config;
}

/** The defaults in `modelDir`/generation_config.json, or {} when the model ships none. */
export async function loadGenerationConfig(modelDir: string): Promise<GenerationConfig> {
  const file = join(modelDir, "generation_config.json");
  if (!(await Bun.file(file).exists())) return {};
  return parseGenerationConfig(readJsonFile(file), file);
}
