// The pre-tokenizers a byte-level BPE GGUF vocabulary names in tokenizer.ggml.pre, as the
// tokenizer.json pieces of the Hugging Face tokenizers they were converted from: the regex that
// splits text into words before merging, and what else differs between them.

export interface BpePreTokenizer {
  /** Splits text into the words BPE merges within. */
  regex: string;
  /** A word found whole in the vocabulary is one token, whatever the merges say (Llama 3). */
  ignoreMerges: boolean;
  /** Qwen's tokenizer NFC-normalizes text first. */
  normalizer: Record<string, unknown> | null;
  /** Whether a BOS is added when the file does not say (tokenizer.ggml.add_bos_token). */
  addBosByDefault: boolean;
}

const GPT2: BpePreTokenizer = {
  regex: "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
  ignoreMerges: false,
  normalizer: null,
  addBosByDefault: false,
};

const LLAMA3: BpePreTokenizer = {
  regex:
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ignoreMerges: true,
  normalizer: null,
  addBosByDefault: true,
};

const QWEN2: BpePreTokenizer = {
  regex:
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ignoreMerges: false,
  normalizer: { type: "NFC" },
  addBosByDefault: false,
};

/** By tokenizer.ggml.pre; an absent key reads as "default", GPT-2's own splitting. */
export const BPE_PRE_TOKENIZERS: Record<string, BpePreTokenizer> = {
  default: GPT2,
  "gpt-2": GPT2,
  "llama-bpe": LLAMA3,
  llama3: LLAMA3,
  qwen2: QWEN2,
};
