// The engine core's structured outputs (vLLM's StructuredOutputManager): one grammar matcher per
// constrained request, fed every token the request samples, and the step's allowed-token masks.
// A matcher lives as long as its request, preemption included: a recomputed request resumes its
// grammar where it was, without replaying its output.
import type { GrammarMatcher } from "@mlc-ai/web-xgrammar";
import type { GrammarVocab } from "../../model/tokenizer.ts";
import type { Request } from "../request.ts";
import { GrammarCompiler } from "./grammar-compiler.ts";
import { grammarSource } from "./structured-outputs.ts";
import { bitmaskWords, type TokenBitmask } from "./token-bitmask.ts";
import { xgrammarCall } from "./xgrammar.ts";

interface RequestGrammar {
  matcher: GrammarMatcher;
  /** Token ids after which the grammar starts (end of reasoning); empty: from the first token. */
  startAfter: readonly number[];
  /** The output's last tokens while waiting for startAfter. */
  recent: number[];
  started: boolean;
}

export class StructuredOutputManager {
  private compiler: Promise<GrammarCompiler> | null = null;
  private readonly grammars = new Map<string, RequestGrammar>();
  /** Milliseconds spent filling masks, and masks filled, since the engine started. */
  readonly maskTime = { totalMs: 0, count: 0 };

  constructor(
    /** The tokenizer's vocabulary, loaded the first time a request needs a grammar. */
    private readonly loadVocab: () => Promise<GrammarVocab>,
    private readonly vocabSize: number,
  ) {}

  /** Compiles (or finds cached) the request's grammar and gives it a matcher. */
  async prepare(request: Request): Promise<void> {
    const outputs = request.samplingParams.structuredOutputs!;
    this.compiler ??= this.loadVocab().then((vocab) => GrammarCompiler.create(vocab, this.vocabSize));
    const compiler = await this.compiler;
    const compiled = await compiler.compile(grammarSource(outputs));
    // The grammar may end only where the request itself would stop: EOS or a stop token id (a
    // request that names none gets the stop tokens xgrammar finds in the vocabulary).
    const stops = [...new Set([...request.eosTokenIds, ...request.samplingParams.stopTokenIds])];
    const matcher = await xgrammarCall(() =>
      compiler.xg.GrammarMatcher.createGrammarMatcher(compiled, stops.length > 0 ? stops : undefined),
    );
    const startAfter = outputs.startAfterTokenIds ?? [];
    this.grammars.set(request.requestId, { matcher, startAfter, recent: [], started: startAfter.length === 0 });
  }

  /** The masks of the requests (in sampled-row order) whose grammar constrains their next token. */
  async bitmask(requestIds: readonly string[]): Promise<TokenBitmask | null> {
    const rows: number[] = [];
    const masks: Int32Array[] = [];
    const started = performance.now();
    for (const [row, id] of requestIds.entries()) {
      const grammar = this.grammars.get(id);
      if (!grammar?.started) continue;
      rows.push(row);
      masks.push(await grammar.matcher.getNextTokenBitmask());
    }
    if (rows.length === 0) return null;
    this.maskTime.totalMs += performance.now() - started;
    this.maskTime.count += rows.length;
    const wordsPerRow = bitmaskWords(this.vocabSize);
    const words = new Int32Array(rows.length * wordsPerRow);
    masks.forEach((mask, i) => {
      words.set(mask.subarray(0, wordsPerRow), i * wordsPerRow);
    });
    return { rowIndices: Int32Array.from(rows), words, wordsPerRow };
  }

  /** Advances the request's grammar by its newly sampled token; false if the grammar refuses it. */
  accept(requestId: string, tokenId: number): boolean {
    const grammar = this.grammars.get(requestId);
    if (!grammar) return true;
    if (grammar.started) return grammar.matcher.acceptToken(tokenId);
    const { recent, startAfter } = grammar;
    recent.push(tokenId);
    if (recent.length > startAfter.length) recent.shift();
    grammar.started = recent.length === startAfter.length && recent.every((id, i) => id === startAfter[i]);
    return true;
  }

  free(requestId: string): void {
    this.grammars.get(requestId)?.matcher.dispose();
    this.grammars.delete(requestId);
  }
}
