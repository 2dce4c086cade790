// A thread that only checks grammar sources, so a client's bad schema, regex or grammar is
// refused with xgrammar's own message before the request reaches the engine. xgrammar aborts its
// WebAssembly call on bad input; doing that here keeps the engine's instance untouched, and the
// checker starts a fresh thread after every failure.
import { checkGrammarSource } from "./grammar-compiler.ts";
import type { GrammarSource } from "./structured-outputs.ts";

declare const self: Worker;

export interface GrammarCheckRequest {
  id: number;
  source: GrammarSource;
}

export interface GrammarCheckResult {
  id: number;
  /** xgrammar's message, or null when the source is valid. */
  error: string | null;
}

self.onmessage = async (event: MessageEvent<GrammarCheckRequest>) => {
  const { id, source } = event.data;
  let error: string | null = null;
  try {
    await checkGrammarSource(source);
  } catch (failure) {
    error = failure instanceof Error ? failure.message : String(failure);
  }
  self.postMessage({ id, error } satisfies GrammarCheckResult);
};
