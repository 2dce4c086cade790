// The engine core's grammar thread: compiles grammars and holds the requests' matchers, so that
// compiling a new schema never stalls the engine's step loop and a step's masks are filled while
// its forward pass runs. Masks, accepted tokens and frees are handled before waiting compiles:
// a compile is one long WebAssembly call, and the running batch should wait for at most one.
import { loadModelTokenizer } from "../../model/load-tokenizer.ts";
import { GrammarCompiler } from "./grammar-compiler.ts";
import { GrammarMatchers } from "./grammar-matchers.ts";
import type { FromGrammar, ToGrammar } from "./grammar-protocol.ts";

declare const self: Worker;

type AddMessage = Extract<ToGrammar, { type: "add" }>;

let matchers: Promise<GrammarMatchers> | null = null;
let initialized: GrammarMatchers | null = null;
const urgent: ToGrammar[] = [];
const adds: AddMessage[] = [];
let draining = false;

const post = (message: FromGrammar, transfer: ArrayBuffer[] = []) => self.postMessage(message, transfer);

self.onmessage = (event: MessageEvent<ToGrammar>) => {
  const message = event.data;
  switch (message.type) {
    case "init":
      matchers = loadModelTokenizer(message.vocab, message.vocab.tokenizer)
        .then((tokenizer) => GrammarCompiler.create(tokenizer.grammarVocab(), message.vocabSize))
        .then((compiler) => {
          initialized = new GrammarMatchers(compiler, message.vocabSize);
          return initialized;
        });
      // A failure is reported to each request that needs the grammar, not here.
      matchers.catch(() => undefined);
      return;
    case "add":
      adds.push(message);
      break;
    case "free":
      cancelAdds(new Set(message.requestIds));
      urgent.push(message);
      break;
    default:
      urgent.push(message);
  }
  void drain();
};

/** Waiting compiles of freed requests are dropped (answered, so their callers settle). */
function cancelAdds(ids: ReadonlySet<string>): void {
  for (let i = adds.length - 1; i >= 0; i--) {
    if (!ids.has(adds[i]!.requestId)) continue;
    post({ type: "added", requestId: adds[i]!.requestId, error: "the request was aborted" });
    adds.splice(i, 1);
  }
}

async function drain(): Promise<void> {
  if (draining) return;
  draining = true;
  try {
    for (let message = urgent.shift() ?? adds.shift(); message; message = urgent.shift() ?? adds.shift()) {
      await handle(message);
    }
  } catch (error) {
    post({ type: "failed", error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  } finally {
    draining = false;
  }
}

async function handle(message: ToGrammar): Promise<void> {
  switch (message.type) {
    case "add": {
      let error: string | null = null;
      try {
        if (!matchers) throw new Error("the grammar thread was not given a vocabulary");
        await (await matchers).add(message.requestId, message.spec);
      } catch (failure) {
        error = failure instanceof Error ? failure.message : String(failure);
      }
      post({ type: "added", requestId: message.requestId, error });
      return;
    }
    case "masks": {
      const started = performance.now();
      const masks = initialized ? await initialized.masks(message.requestIds) : null;
      post(
        { type: "masks", masks, fillMs: performance.now() - started },
        masks ? [masks.words.buffer as ArrayBuffer] : [],
      );
      return;
    }
    case "accept":
      for (const [requestId, tokenId] of message.tokens) {
        if (initialized?.accept(requestId, tokenId) !== false) continue;
        initialized.free(requestId);
        post({ type: "refused", requestId, tokenId });
      }
      return;
    case "free":
      for (const id of message.requestIds) initialized?.free(id);
      return;
    case "init":
      return;
  }
}
