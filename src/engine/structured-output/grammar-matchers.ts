// The grammar thread's state (vLLM's StructuredOutputManager, grammar side): one xgrammar matcher
// per constrained request, fed every token the request samples, and the step's allowed-token
// masks. A matcher lives as long as its request, preemption included: a recomputed request
// resumes its grammar where it was, without replaying its output.
import type { GrammarMatcher } from "@mlc-ai/web-xgrammar";
import type { GrammarCompiler } from "./grammar-compiler.ts";
import type { GrammarSource } from "./structured-outputs.ts";
import { bitmaskWords } from "./token-bitmask.ts";
import { xgrammarCall } from "./xgrammar.ts";

interface RequestGrammar {
  matcher: GrammarMatcher;
  /** Token ids after which the grammar starts (end of reasoning); empty: from the first token. */
  startAfter: readonly number[];
  /** The output's last tokens while waiting for startAfter. */
  recent: number[];
  started: boolean;
}

/** What one request's grammar is built from. */
export interface GrammarSpec {
  source: GrammarSource;
  /** Where the grammar may end: the request's EOS ids and stop token ids (none: xgrammar's own). */
  stopTokenIds: readonly number[];
  startAfterTokenIds: readonly number[];
}

/** The masks of the rows whose grammar constrains their next token. */
export interface RowMasks {
  rowIndices: Int32Array;
  words: Int32Array;
}

export class GrammarMatchers {
  private readonly grammars = new Map<string, RequestGrammar>();

  constructor(
    private readonly compiler: GrammarCompiler,
    private readonly vocabSize: number,
  ) {}

  /** Compiles (or finds cached) the request's grammar and gives it a matcher. */
  async add(requestId: string, spec: GrammarSpec): Promise<void> {
    const compiled = await this.compiler.compile(spec.source);
    const stops = spec.stopTokenIds.length > 0 ? [...spec.stopTokenIds] : undefined;
    const matcher = await xgrammarCall(() => this.compiler.xg.GrammarMatcher.createGrammarMatcher(compiled, stops));
    const startAfter = spec.startAfterTokenIds;
    this.grammars.set(requestId, { matcher, startAfter, recent: [], started: startAfter.length === 0 });
  }

  /** The masks of the requests (in sampled-row order) whose grammar constrains their next token. */
  async masks(requestIds: readonly string[]): Promise<RowMasks | null> {
    const rows: number[] = [];
    const masks: Int32Array[] = [];
    for (const [row, id] of requestIds.entries()) {
      const grammar = this.grammars.get(id);
      if (!grammar?.started) continue;
      rows.push(row);
      masks.push(await grammar.matcher.getNextTokenBitmask());
    }
    if (rows.length === 0) return null;
    const wordsPerRow = bitmaskWords(this.vocabSize);
    const words = new Int32Array(rows.length * wordsPerRow);
    masks.forEach((mask, i) => {
      words.set(mask.subarray(0, wordsPerRow), i * wordsPerRow);
    });
    return { rowIndices: Int32Array.from(rows), words };
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
