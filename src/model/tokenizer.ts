// The model's tokenizer: tokenizer.json through @huggingface/tokenizers, the special tokens and chat
// template of tokenizer_config.json, and vLLM's incremental detokenizer for streamed output.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { ModelLoadError, readJsonFile } from "./errors.ts";

/** A special token as tokenizer_config.json writes it: a plain string or an AddedToken record. */
type TokenSpec = string | { content: string } | null | undefined;

interface TokenizerConfig {
  bos_token?: TokenSpec;
  eos_token?: TokenSpec;
  unk_token?: TokenSpec;
  pad_token?: TokenSpec;
  additional_special_tokens?: TokenSpec[];
  chat_template?: string | { name: string; template: string }[];
}

function tokenContent(spec: TokenSpec): string | null {
  if (typeof spec === "string") return spec;
  return spec?.content ?? null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** transformers stores several named templates as a list; the unnamed request uses "default". */
function defaultChatTemplate(template: TokenizerConfig["chat_template"]): string | null {
  if (typeof template === "string") return template;
  if (Array.isArray(template)) return template.find((entry) => entry.name === "default")?.template ?? null;
  return null;
}

/**
 * How the vocabulary's token strings spell bytes, as xgrammar's TokenizerInfo reads them:
 * GPT-2's byte-level alphabet, SentencePiece pieces with <0xAB> byte fallback, or plain text.
 */
export type VocabEncoding = "byte_level" | "byte_fallback" | "raw";

/** What a grammar engine needs to know about the vocabulary (see xgrammar's TokenizerInfo). */
export interface GrammarVocab {
  /** Token strings by id, as tokenizer.json spells them (absent ids as ""). */
  tokens: string[];
  encoding: VocabEncoding;
  /** SentencePiece's "▁" prepended to the text before tokenizing. */
  prependSpace: boolean;
}

/**
 * Normalizers that shrink text at most threefold: a Unicode normalization form composes up to three
 * code points into one character (Hangul L+V+T: 9 bytes into 3), case mapping turns 3-byte letters
 * into 1-byte ones (the Kelvin sign into k). Prepend only adds.
 */
const NORMALIZER_SHRINK: Record<string, number> = { NFC: 3, NFD: 3, NFKC: 3, NFKD: 3, Lowercase: 3, Prepend: 1 };

/**
 * How many times fewer bytes the normalized text may have than the client's, or null when the
 * normalizer may shrink it without bound (StripAccents, Strip, a regex Replace, a precompiled
 * charsmap, ...). A sequence shrinks by the product of its steps'.
 */
function normalizerShrink(normalizer: unknown): number | null {
  if (!isRecord(normalizer)) return 1;
  if (normalizer.type === "Sequence") {
    let shrink = 1;
    for (const step of Array.isArray(normalizer.normalizers) ? normalizer.normalizers : []) {
      const factor = normalizerShrink(step);
      if (factor === null) return null;
      shrink *= factor;
    }
    return shrink;
  }
  if (normalizer.type === "Replace") {
    // A fixed string replaced by a non-empty one (SentencePiece's " " by "▁") shrinks by their ratio.
    const pattern = isRecord(normalizer.pattern) ? normalizer.pattern.String : undefined;
    const content = normalizer.content;
    if (typeof pattern !== "string" || typeof content !== "string" || content === "") return null;
    return Math.max(1, Buffer.byteLength(pattern) / Buffer.byteLength(content));
  }
  return NORMALIZER_SHRINK[String(normalizer.type)] ?? null;
}

/** The bytes of text a vocabulary token spells, as its encoding writes them. */
function spelledBytes(token: string, encoding: VocabEncoding): number {
  // One character of GPT-2's byte-level alphabet per byte.
  if (encoding === "byte_level") return token.length;
  if (encoding === "byte_fallback")
    return /^<0x[0-9A-Fa-f]{2}>$/.test(token) ? 1 : Buffer.byteLength(token.replaceAll("▁", " "));
  return Buffer.byteLength(token);
}

function decoderTypes(decoder: unknown): string[] {
  if (!isRecord(decoder)) return [];
  const nested = Array.isArray(decoder.decoders) ? decoder.decoders.flatMap(decoderTypes) : [];
  return [String(decoder.type), ...nested];
}

/** As xgrammar detects it from tokenizer.json: the decoder tells how tokens spell bytes. */
function vocabEncoding(tokenizerJson: Record<string, unknown>): { encoding: VocabEncoding; prependSpace: boolean } {
  const types = decoderTypes(tokenizerJson.decoder);
  if (types.includes("ByteLevel")) return { encoding: "byte_level", prependSpace: false };
  if (!types.includes("ByteFallback")) return { encoding: "raw", prependSpace: false };
  const text = JSON.stringify([tokenizerJson.normalizer, tokenizerJson.pre_tokenizer]);
  return { encoding: "byte_fallback", prependSpace: /"Prepend"|"Metaspace"/.test(text) && !/"never"/.test(text) };
}

export class ModelTokenizer {
  /** Number of token ids the tokenizer knows, added tokens included. */
  readonly vocabSize: number;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly chatTemplate: string | null;
  private readonly specialIds: Set<number>;
  private longestTokenBytes: number | null = null;

  private constructor(
    private readonly tokenizer: Tokenizer,
    config: TokenizerConfig,
    private readonly encoding: { encoding: VocabEncoding; prependSpace: boolean },
    /** See normalizerShrink. */
    private readonly normalizerShrink: number | null,
  ) {
    if (!tokenizer.model) throw new Error("tokenizer.json has no model");
    this.vocabSize = tokenizer.model.vocab.length;
    this.bosToken = tokenContent(config.bos_token);
    this.eosToken = tokenContent(config.eos_token);
    this.bosTokenId = this.bosToken === null ? null : (this.tokenToId(this.bosToken) ?? null);
    this.eosTokenId = this.eosToken === null ? null : (this.tokenToId(this.eosToken) ?? null);
    this.chatTemplate = defaultChatTemplate(config.chat_template);

    // As transformers' all_special_ids: added tokens flagged special plus every token the config
    // names as special, since a config may promote tokens that tokenizer.json leaves unflagged.
    this.specialIds = new Set();
    for (const [id, token] of tokenizer.get_added_tokens_decoder()) if (token.special) this.specialIds.add(id);
    const named = [config.bos_token, config.eos_token, config.unk_token, config.pad_token];
    for (const spec of [...named, ...(config.additional_special_tokens ?? [])]) {
      const content = tokenContent(spec);
      const id = content === null ? undefined : this.tokenToId(content);
      if (id !== undefined) this.specialIds.add(id);
    }
  }

  /** From the parsed contents of tokenizer.json and tokenizer_config.json. */
  static fromJSON(tokenizerJson: unknown, tokenizerConfig: unknown = {}): ModelTokenizer {
    if (!isRecord(tokenizerJson)) throw new Error("tokenizer.json must hold a JSON object");
    if (!isRecord(tokenizerConfig)) throw new Error("tokenizer_config.json must hold a JSON object");
    return new ModelTokenizer(
      new Tokenizer(tokenizerJson, tokenizerConfig),
      tokenizerConfig as TokenizerConfig,
      vocabEncoding(tokenizerJson),
      normalizerShrink(tokenizerJson.normalizer),
    );
  }

  /** Special tokens are added as the tokenizer.json post-processor says (e.g. a BOS), as HF does. */
  encode(text: string, { addSpecialTokens = true }: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  /**
   * Ids outside the vocabulary decode to nothing, as in HF's Rust tokenizers: a model's embedding
   * table is often padded past the tokenizer's vocabulary. No clean-up of spaces before
   * punctuation: it is a heuristic that corrupts code, and streamed text could not reproduce it.
   */
  decode(ids: readonly number[], { skipSpecialTokens = false }: { skipSpecialTokens?: boolean } = {}): string {
    const kept = ids.filter(
      (id) => this.idToToken(id) !== undefined && !(skipSpecialTokens && this.specialIds.has(id)),
    );
    // The library rejects an empty list.
    if (kept.length === 0) return "";
    return this.tokenizer.decode(kept, { clean_up_tokenization_spaces: false });
  }

  /** The vocabulary as a grammar engine reads it (built on demand: 150k strings). */
  grammarVocab(): GrammarVocab {
    const tokens = Array.from({ length: this.vocabSize }, (_, id) => this.idToToken(id) ?? "");
    return { tokens, ...this.encoding };
  }

  /**
   * The most bytes of a client's text that one token can stand for: the vocabulary's longest token
   * (added tokens as their text), times what the normalizer may shrink text by. A text of B bytes
   * encodes into at least B / maxBytesPerToken tokens, so one longer than a model's context allows
   * can be refused without encoding it. Null when the normalizer gives no such bound.
   */
  get maxBytesPerToken(): number | null {
    if (this.normalizerShrink === null) return null;
    if (this.longestTokenBytes === null) {
      const added = this.tokenizer.get_added_tokens_decoder();
      let longest = 1;
      for (let id = 0; id < this.vocabSize; id++) {
        const addedToken = added.get(id);
        const bytes = addedToken
          ? Buffer.byteLength(addedToken.content)
          : spelledBytes(this.idToToken(id) ?? "", this.encoding.encoding);
        longest = Math.max(longest, bytes);
      }
      this.longestTokenBytes = longest;
    }
    return Math.ceil(this.longestTokenBytes * this.normalizerShrink);
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  idToToken(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }
}

/** Newer transformers save the chat template beside tokenizer_config.json rather than inside it. */
function readSeparateChatTemplate(modelDir: string): string | undefined {
  const jinjaFile = join(modelDir, "chat_template.jinja");
  if (existsSync(jinjaFile)) return readFileSync(jinjaFile, "utf8");
  const jsonFile = join(modelDir, "chat_template.json");
  if (!existsSync(jsonFile)) return undefined;
  const parsed = readJsonFile(jsonFile);
  if (isRecord(parsed) && typeof parsed.chat_template === "string") return parsed.chat_template;
  throw new ModelLoadError(jsonFile, 'expected an object with a string "chat_template"');
}

/** The tokenizer of a Hugging Face model directory; tokenizer_config.json is optional. */
export async function loadTokenizer(modelDir: string): Promise<ModelTokenizer> {
  const tokenizerFile = join(modelDir, "tokenizer.json");
  const configFile = join(modelDir, "tokenizer_config.json");
  const tokenizerJson = readJsonFile(tokenizerFile);
  let config = existsSync(configFile) ? readJsonFile(configFile) : {};
  if (!isRecord(config)) throw new ModelLoadError(configFile, "expected a JSON object");
  if (config.chat_template === undefined) {
    const template = readSeparateChatTemplate(modelDir);
    if (template !== undefined) config = { ...config, chat_template: template };
  }
  try {
    return ModelTokenizer.fromJSON(tokenizerJson, config);
  } catch (error) {
    throw new ModelLoadError(tokenizerFile, `not a usable tokenizer (${(error as Error).message})`);
  }
}

/** Context kept from the prompt: enough for a split multi-byte character or a leading space. */
const PROMPT_CONTEXT_TOKENS = 5;

/**
 * Turns generated token ids into text deltas as vLLM does: decode a small window twice, from
 * prefixOffset to readOffset (text already emitted) and to the end, and emit the difference. A
 * trailing U+FFFD means a character's bytes are still incomplete, so nothing is emitted until more
 * tokens arrive. Concatenated deltas equal decode() of the same ids. Only the window is kept.
 */
export class IncrementalDetokenizer {
  private ids: number[];
  private prefixOffset = 0;
  private readOffset: number;
  private readonly skipSpecialTokens: boolean;

  constructor(
    private readonly tokenizer: ModelTokenizer,
    options: { skipSpecialTokens?: boolean; promptIds?: readonly number[] } = {},
  ) {
    this.skipSpecialTokens = options.skipSpecialTokens ?? false;
    // The prompt's tail gives the first generated token its context (a SentencePiece leading
    // space survives, a character split across the boundary completes) without being emitted.
    this.ids = (options.promptIds ?? []).slice(-PROMPT_CONTEXT_TOKENS);
    this.readOffset = this.ids.length;
  }

  /** Adds generated ids and returns the newly completed text, possibly "". */
  push(newIds: number | readonly number[]): string {
    let delta = "";
    // One step per id, so completed text is emitted even if a later id in the batch is partial.
    for (const id of typeof newIds === "number" ? [newIds] : newIds) {
      this.ids.push(id);
      delta += this.step(false);
    }
    return delta;
  }

  /** At the end of a sequence: the text still held back, incomplete characters included. */
  flush(): string {
    return this.step(true);
  }

  private step(force: boolean): string {
    const decodeOptions = { skipSpecialTokens: this.skipSpecialTokens };
    const emitted = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset), decodeOptions);
    const full = this.tokenizer.decode(this.ids.slice(this.prefixOffset), decodeOptions);
    if (full.length <= emitted.length || (!force && full.endsWith("\uFFFD"))) return "";
    // The new window starts where the old one was read to; earlier ids are never decoded again.
    this.ids = this.ids.slice(this.readOffset);
    this.prefixOffset = 0;
    this.readOffset = this.ids.length;
    return full.slice(emitted.length);
  }
}
