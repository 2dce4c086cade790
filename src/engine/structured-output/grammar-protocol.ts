// Messages between the engine core and its grammar thread (grammar-worker.ts). All plain data.
import type { ModelSource } from "../../model/load-model.ts";
import type { GrammarSpec, RowMasks } from "./grammar-matchers.ts";

/** Where the grammar thread finds the model's tokenizer (loaded there, on first use). */
export interface GrammarVocabSource extends Pick<ModelSource, "dir" | "ggufFile"> {
  /** vLLM's --tokenizer, if given. */
  tokenizer?: string;
}

export type ToGrammar =
  | { type: "init"; vocab: GrammarVocabSource; vocabSize: number }
  /** Compile (or find cached) a request's grammar and give it a matcher; answered by "added". */
  | { type: "add"; requestId: string; spec: GrammarSpec }
  /** The next step's masks, for its sampled rows in order; answered by "masks", in order. */
  | { type: "masks"; requestIds: string[] }
  /** Tokens the requests sampled, in step order. */
  | { type: "accept"; tokens: [requestId: string, tokenId: number][] }
  | { type: "free"; requestIds: string[] };

export type FromGrammar =
  | { type: "added"; requestId: string; error: string | null }
  | { type: "masks"; masks: RowMasks | null; fillMs: number }
  /** The request's grammar refused a sampled token; its matcher is gone. */
  | { type: "refused"; requestId: string; tokenId: number }
  /** The thread can no longer answer (a bug, not a request's fault). */
  | { type: "failed"; error: string };
