// A small but real byte-level BPE tokenizer (GPT-2 byte alphabet, a few merges, Qwen's special
// tokens and chat template), so tests tokenize through the same library and formats as real
// models without shipping a 150k-token vocabulary.

/** GPT-2's reversible map from bytes to printable characters, as byte-level BPE vocabularies use. */
function byteToUnicode(): string[] {
  const printable = (byte: number) =>
    (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
  const table: string[] = [];
  let shifted = 0;
  for (let byte = 0; byte < 256; byte++) {
    table.push(String.fromCodePoint(printable(byte) ? byte : 256 + shifted++));
  }
  return table;
}

/** Pairs merged in this order; "Ġ" is the byte-level form of a leading space. */
const MERGES: [string, string][] = [
  ["Ġ", "t"],
  ["h", "e"],
  ["i", "n"],
  ["e", "r"],
  ["Ġ", "a"],
  ["o", "n"],
  ["r", "e"],
  ["Ġt", "he"],
  ["l", "l"],
  ["e", "n"],
  ["o", "r"],
  ["Ġ", "s"],
  ["Ġ", "w"],
  ["a", "t"],
  ["i", "s"],
  ["Ġ", "o"],
  ["e", "s"],
  ["l", "o"],
  ["Ġ", "c"],
  ["he", "llo"],
  ["ll", "o"],
  ["Ġ", "h"],
  ["Ġh", "ello"],
  ["o", "u"],
];

const SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] as const;

/** Qwen2-Instruct's chat template. */
const CHAT_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}" +
  "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}" +
  "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export type SpecialToken = (typeof SPECIAL_TOKENS)[number];

export interface TinyTokenizerFiles {
  tokenizerJson: object;
  tokenizerConfig: object;
  vocabSize: number;
  specialTokenIds: Record<SpecialToken, number>;
}

export function tinyTokenizerFiles(): TinyTokenizerFiles {
  const vocab: Record<string, number> = {};
  for (const symbol of byteToUnicode()) vocab[symbol] = Object.keys(vocab).length;
  for (const [left, right] of MERGES) vocab[left + right] ??= Object.keys(vocab).length;
  const firstSpecialId = Object.keys(vocab).length;
  const addedTokens = SPECIAL_TOKENS.map((content, i) => ({
    id: firstSpecialId + i,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false };
  const tokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: { ...byteLevel, use_regex: true },
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: MERGES.map(([left, right]) => `${left} ${right}`),
    },
  };
  const tokenizerConfig = {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: Object.fromEntries(addedTokens.map(({ id, ...token }) => [String(id), token])),
    bos_token: null,
    eos_token: "<|im_end|>",
    pad_token: "<|endoftext|>",
    chat_template: CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    model_max_length: 4096,
    tokenizer_class: "Qwen2Tokenizer",
  };
  return {
    tokenizerJson,
    tokenizerConfig,
    vocabSize: firstSpecialId + SPECIAL_TOKENS.length,
    specialTokenIds: Object.fromEntries(addedTokens.map(({ content, id }) => [content, id])) as Record<
      SpecialToken,
      number
    >,
  };
}
