// Grammars compiled against one model's vocabulary (xgrammar's GrammarCompiler): the vocabulary
// is preprocessed once per model, and each distinct grammar source is compiled once and cached,
// since agents send the same schema or tool list with every request.
import type { CompiledGrammar, GrammarCompiler as XgrammarCompiler } from "@mlc-ai/web-xgrammar";
import type { GrammarVocab } from "../../model/tokenizer.ts";
import { type GrammarSource, grammarKey } from "./structured-outputs.ts";
import { loadXgrammar, type XgrammarModule, xgrammarCall } from "./xgrammar.ts";

/**
 * JSON is constrained to one line with Python's separators (", " and ": "): a model that may emit
 * any whitespace can emit it forever (vLLM's users meet this with any_whitespace), and properties
 * the schema does not name are refused (xgrammar's strict mode, OpenAI's `strict`).
 */
export const JSON_FORMAT = { anyWhitespace: false, indent: -1, strict: true } as const;

/** Compiled grammars kept (least recently used dropped first). */
const CACHE_SIZE = 256;

/** Checks a source without a vocabulary (fast): throws GrammarError with xgrammar's message. */
export async function checkGrammarSource(source: GrammarSource): Promise<void> {
  const xg = await loadXgrammar();
  const grammar = await xgrammarCall(() => {
    switch (source.kind) {
      case "json_schema":
        return xg.Grammar.fromJSONSchema(source.text, JSON_FORMAT.anyWhitespace, JSON_FORMAT.indent, undefined, true);
      case "ebnf":
        return xg.Grammar.fromEBNF(source.text);
      case "structural_tag":
        return xg.Grammar.fromStructuralTag(source.text);
    }
  });
  grammar.dispose();
}

export class GrammarCompiler {
  private readonly cache = new Map<string, Promise<CompiledGrammar>>();

  private constructor(
    readonly xg: XgrammarModule,
    private readonly compiler: XgrammarCompiler,
  ) {}

  /** vocabSize: the model's logits width, which may exceed the tokenizer's vocabulary. */
  static async create(vocab: GrammarVocab, vocabSize: number): Promise<GrammarCompiler> {
    const xg = await loadXgrammar();
    const info = await xgrammarCall(() =>
      xg.TokenizerInfo.createTokenizerInfo(vocab.tokens, vocab.encoding, vocab.prependSpace, vocabSize),
    );
    return new GrammarCompiler(xg, await xgrammarCall(() => xg.GrammarCompiler.createGrammarCompiler(info)));
  }

  compile(source: GrammarSource): Promise<CompiledGrammar> {
    const key = grammarKey(source);
    const cached = this.cache.get(key);
    if (cached) {
      this.cache.delete(key);
      this.cache.set(key, cached);
      return cached;
    }
    const compiled = xgrammarCall(() => {
      switch (source.kind) {
        case "json_schema":
          return this.compiler.compileJSONSchema(
            source.text,
            JSON_FORMAT.anyWhitespace,
            JSON_FORMAT.indent,
            undefined,
            JSON_FORMAT.strict,
          );
        case "ebnf":
          return this.compiler.compileGrammar(source.text);
        case "structural_tag":
          return this.compiler.compileStructuralTag(source.text);
      }
    });
    this.cache.set(key, compiled);
    compiled.catch(() => this.cache.delete(key));
    if (this.cache.size > CACHE_SIZE) this.evictOldest();
    return compiled;
  }

  private evictOldest(): void {
    const [key, oldest] = this.cache.entries().next().value!;
    this.cache.delete(key);
    // Matchers built from it keep their own reference to the compiled data.
    oldest.then((grammar) => grammar.dispose()).catch(() => undefined);
  }
}
