// A Hugging Face byte-level BPE tokenizer (tokenizer.json + tokenizer_config.json) written into
// tokenizer.ggml.* metadata the way llama.cpp's convert_hf_to_gguf.py writes it: one token per id
// up to the model's vocabulary size ([PADn] for ids the tokenizer lacks), added tokens typed
// control (special, or looking like <|...|>) or user-defined, merges as "left right" strings.
import { arr, bool, type GgufEntry, str, u32 } from "./gguf-writer.ts";

const NORMAL = 1;
const CONTROL = 3;
const USER_DEFINED = 4;
const UNUSED = 5;

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}

interface TokenizerJson {
  added_tokens: AddedToken[];
  model: { vocab: Record<string, number>; merges: (string | [string, string])[] };
}

type TokenSpec = string | { content: string } | null | undefined;

const contentOf = (spec: TokenSpec) => (typeof spec === "string" ? spec : (spec?.content ?? null));

export interface ByteLevelMetadataOptions {
  /** tokenizer.ggml.pre, as the converter recognizes the tokenizer. */
  pre: string;
  /** The model's vocabulary size (config.json's vocab_size). */
  vocabSize: number;
  /** config.json's bos_token_id, which the converter falls back on. */
  bosTokenId?: number;
}

export function byteLevelTokenizerMetadata(
  tokenizerJson: unknown,
  tokenizerConfig: Record<string, unknown>,
  options: ByteLevelMetadataOptions,
): Record<string, GgufEntry> {
  const json = tokenizerJson as TokenizerJson;
  const byId = new Map<number, string>();
  for (const [token, id] of Object.entries(json.model.vocab)) byId.set(id, token);
  const added = new Map(json.added_tokens.map((token) => [token.id, token]));
  for (const token of added.values()) byId.set(token.id, token.content);
  const tokens: string[] = [];
  const types: number[] = [];
  for (let id = 0; id < options.vocabSize; id++) {
    const token = byId.get(id);
    const addedToken = added.get(id);
    if (token === undefined) {
      tokens.push(`[PAD${id}]`);
      types.push(UNUSED);
    } else if (addedToken !== undefined) {
      const looksSpecial = token.startsWith("<|") && token.endsWith("|>");
      tokens.push(token);
      types.push(addedToken.special || looksSpecial ? CONTROL : USER_DEFINED);
    } else {
      tokens.push(token);
      types.push(NORMAL);
    }
  }
  const idOf = (spec: unknown) => {
    const content = contentOf(spec as TokenSpec);
    return content === null ? undefined : tokens.indexOf(content);
  };
  const metadata: Record<string, GgufEntry> = {
    "tokenizer.ggml.model": str("gpt2"),
    "tokenizer.ggml.pre": str(options.pre),
    "tokenizer.ggml.tokens": arr("string", tokens),
    "tokenizer.ggml.token_type": arr("int32", types),
    "tokenizer.ggml.merges": arr(
      "string",
      json.model.merges.map((merge) => (typeof merge === "string" ? merge : merge.join(" "))),
    ),
  };
  const bos = idOf(tokenizerConfig.bos_token) ?? options.bosTokenId;
  if (bos !== undefined) metadata["tokenizer.ggml.bos_token_id"] = u32(bos);
  const eos = idOf(tokenizerConfig.eos_token);
  if (eos !== undefined) metadata["tokenizer.ggml.eos_token_id"] = u32(eos);
  const pad = idOf(tokenizerConfig.pad_token);
  if (pad !== undefined) metadata["tokenizer.ggml.padding_token_id"] = u32(pad);
  if (typeof tokenizerConfig.add_bos_token === "boolean") {
    metadata["tokenizer.ggml.add_bos_token"] = bool(tokenizerConfig.add_bos_token);
  }
  if (typeof tokenizerConfig.chat_template === "string") {
    metadata["tokenizer.chat_template"] = str(tokenizerConfig.chat_template);
  }
  return metadata;
}
