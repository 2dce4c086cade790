// The tokenizer a GGUF file carries in its tokenizer.ggml.* metadata, rewritten as the
// tokenizer.json and tokenizer_config.json of the Hugging Face tokenizer it was converted from,
// so @huggingface/tokenizers runs it: "gpt2" (byte-level BPE with merges and a pre-tokenizer
// regex named by tokenizer.ggml.pre) or "llama" (SentencePiece BPE: scored pieces, <0xAB> byte
// fallback, a "▁" prefix).

import { BPE_PRE_TOKENIZERS } from "./bpe-pre-tokenizers.ts";
import type { GgufFile } from "./gguf-file.ts";
import { GgufMetadata } from "./gguf-metadata.ts";
import { sentencePieceMerges } from "./sentencepiece-merges.ts";

/** llama.cpp's token types (tokenizer.ggml.token_type). */
const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

export interface TokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
}

interface Vocabulary {
  tokens: string[];
  types: ArrayLike<number>;
  vocab: Record<string, number>;
}

function readVocabulary(metadata: GgufMetadata): Vocabulary {
  const tokens = metadata.stringArray("tokenizer.ggml.tokens");
  const types = metadata.has("tokenizer.ggml.token_type")
    ? metadata.numberArray("tokenizer.ggml.token_type", tokens.length)
    : new Uint8Array(tokens.length).fill(TOKEN_TYPE.normal);
  const vocab: Record<string, number> = Object.create(null);
  for (const [id, token] of tokens.entries()) {
    if (token in vocab) {
      metadata.fail("tokenizer.ggml.tokens", `lists ${JSON.stringify(token)} twice (ids ${vocab[token]} and ${id})`);
    }
    vocab[token] = id;
  }
  return { tokens, types, vocab };
}

/** Control and unknown tokens are special (skipped in decoding on request); user-defined ones are not. */
function addedTokens({ tokens, types }: Vocabulary) {
  const added = [];
  for (const [id, content] of tokens.entries()) {
    const type = types[id];
    if (type !== TOKEN_TYPE.control && type !== TOKEN_TYPE.unknown && type !== TOKEN_TYPE.userDefined) continue;
    const special = type !== TOKEN_TYPE.userDefined;
    added.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special });
  }
  return added;
}

function tokenAt(metadata: GgufMetadata, tokens: string[], key: string): string | null {
  const id = metadata.optionalInteger(key);
  if (id === undefined) return null;
  if (id < 0 || id >= tokens.length) metadata.fail(key, `is ${id}, outside the ${tokens.length}-token vocabulary`);
  return tokens[id]!;
}

/** Adds BOS/EOS around each sequence, as the file says (TemplateProcessing in tokenizer.json terms). */
function postProcessor(bos: string | null, eos: string | null, vocab: Record<string, number>) {
  const specials = [bos, eos].filter((token): token is string => token !== null);
  if (specials.length === 0) return null;
  const sequence = (id: "A" | "B", typeId: number) => [
    ...(bos === null ? [] : [{ SpecialToken: { id: bos, type_id: typeId } }]),
    { Sequence: { id, type_id: typeId } },
    ...(eos === null ? [] : [{ SpecialToken: { id: eos, type_id: typeId } }]),
  ];
  return {
    type: "TemplateProcessing",
    single: sequence("A", 0),
    pair: [...sequence("A", 0), ...sequence("B", 1)],
    special_tokens: Object.fromEntries(
      specials.map((token) => [token, { id: token, ids: [vocab[token]], tokens: [token] }]),
    ),
  };
}

function byteLevelParts(metadata: GgufMetadata, vocabulary: Vocabulary) {
  const pre = metadata.optionalString("tokenizer.ggml.pre") ?? "default";
  const preTokenizer = BPE_PRE_TOKENIZERS[pre];
  if (preTokenizer === undefined) {
    metadata.fail(
      "tokenizer.ggml.pre",
      `is ${JSON.stringify(pre)}, a pre-tokenizer this build does not know (supported: ${Object.keys(BPE_PRE_TOKENIZERS).join(", ")})`,
    );
  }
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false };
  return {
    addBosByDefault: preTokenizer.addBosByDefault,
    normalizer: preTokenizer.normalizer,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: preTokenizer.regex }, behavior: "Isolated", invert: false },
        byteLevel,
      ],
    },
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: preTokenizer.ignoreMerges,
      vocab: vocabulary.vocab,
      merges: metadata.stringArray("tokenizer.ggml.merges"),
    },
  };
}

function sentencePieceParts(metadata: GgufMetadata, vocabulary: Vocabulary, unknown: string | null) {
  const { tokens, types, vocab } = vocabulary;
  const scores = metadata.numberArray("tokenizer.ggml.scores", tokens.length);
  const mergeable = tokens
    .map((piece, id) => ({ piece, id, score: scores[id]! }))
    .filter(({ id }) => types[id] === TOKEN_TYPE.normal);
  const addSpacePrefix = metadata.boolean("tokenizer.ggml.add_space_prefix", true);
  const spaceToMeta = { type: "Replace", pattern: { String: " " }, content: "▁" };
  return {
    addBosByDefault: true,
    normalizer: {
      type: "Sequence",
      normalizers: addSpacePrefix ? [{ type: "Prepend", prepend: "▁" }, spaceToMeta] : [spaceToMeta],
    },
    pre_tokenizer: null,
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "▁" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        ...(addSpacePrefix ? [{ type: "Strip", content: " ", start: 1, stop: 0 }] : []),
      ],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: unknown,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: sentencePieceMerges(mergeable),
    },
  };
}

export function ggufTokenizerFiles(gguf: GgufFile): TokenizerFiles {
  const metadata = new GgufMetadata(gguf);
  const model = metadata.string("tokenizer.ggml.model");
  if (model !== "gpt2" && model !== "llama") {
    metadata.fail(
      "tokenizer.ggml.model",
      `is ${JSON.stringify(model)}; supported: gpt2 (byte-level BPE), llama (SentencePiece)`,
    );
  }
  const vocabulary = readVocabulary(metadata);
  const token = (name: string) => tokenAt(metadata, vocabulary.tokens, `tokenizer.ggml.${name}`);
  const bos = token("bos_token_id");
  const eos = token("eos_token_id");
  const unknown = token("unknown_token_id");
  const { addBosByDefault, ...parts } =
    model === "gpt2" ? byteLevelParts(metadata, vocabulary) : sentencePieceParts(metadata, vocabulary, unknown);
  const addBos = metadata.boolean("tokenizer.ggml.add_bos_token", addBosByDefault) && bos !== null;
  const addEos = metadata.boolean("tokenizer.ggml.add_eos_token", false) && eos !== null;
  const tokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens(vocabulary),
    ...parts,
    post_processor: postProcessor(addBos ? bos : null, addEos ? eos : null, vocabulary.vocab),
  };
  const chatTemplate = metadata.optionalString("tokenizer.chat_template");
  const tokenizerConfig = {
    bos_token: bos,
    eos_token: eos,
    unk_token: unknown,
    pad_token: token("padding_token_id"),
    add_bos_token: addBos,
    add_eos_token: addEos,
    ...(chatTemplate === undefined ? {} : { chat_template: chatTemplate }),
  };
  return { tokenizerJson, tokenizerConfig };
}
