// xgrammar's WebAssembly build, loaded once per thread. Its C++ side reports a bad schema, regex
// or grammar by printing "[FATAL] file:line: message" and aborting the call; the module prints
// through the console.error it finds when it starts, so that function is routed here first and the
// message becomes the thrown error's.
import type * as Xgrammar from "@mlc-ai/web-xgrammar";

export type XgrammarModule = typeof Xgrammar;

let printed: string[] | null = null;
let loading: Promise<XgrammarModule> | null = null;

/** The C++ message of a failed call, without its source location. */
function failureMessage(lines: readonly string[]): string | null {
  const fatal = lines.find((line) => line.startsWith("[FATAL]"));
  if (!fatal) return null;
  return fatal.replace(/^\[FATAL\]\s+\S+:\d+:\s*/, "").trim();
}

export class GrammarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GrammarError";
  }
}

export function loadXgrammar(): Promise<XgrammarModule> {
  loading ??= (async () => {
    const original = console.error;
    console.error = (...args: unknown[]) => {
      if (printed) printed.push(args.map(String).join(" "));
      else original(...args);
    };
    const module = await import("@mlc-ai/web-xgrammar");
    // The binding initializes (and binds console.error) at its first call.
    await module.Grammar.fromEBNF('root ::= "x"').then((grammar) => grammar.dispose());
    return module;
  })();
  return loading;
}

/** Calls run one at a time, so each failure's printed lines are its own. */
let previous: Promise<unknown> = Promise.resolve();

/** Runs one xgrammar call; a failure becomes a GrammarError carrying xgrammar's own message. */
export function xgrammarCall<T>(call: () => Promise<T>): Promise<T> {
  const run = async () => {
    printed = [];
    try {
      return await call();
    } catch (error) {
      const message = failureMessage(printed) ?? (error instanceof Error ? error.message : String(error));
      throw new GrammarError(message);
    } finally {
      printed = null;
    }
  };
  const result = previous.then(run, run);
  previous = result.catch(() => undefined);
  return result;
}
