// Reasoning parsers, as vLLM's `--reasoning-parser`: they split a model's output text into its
// reasoning (between `<think>` and `</think>`) and its content, whole or streamed in pieces split
// anywhere. A channel that is only whitespace is absent (null), and streamed, no marker or part of
// one reaches either channel.
import { deepSeekR1ReasoningParser, qwen3ReasoningParser } from "./think-parser.ts";

export interface ReasoningOptions {
  /**
   * Whether the prompt ends inside a reasoning block (the chat template opened `<think>` itself), so
   * the output starts as reasoning. Defaults to the parser's `startsInReasoning`; the engine can tell
   * from the rendered prompt.
   */
  inReasoning?: boolean;
}

export interface ReasoningSplit {
  reasoning: string | null;
  content: string | null;
}

export interface ReasoningDelta {
  reasoning?: string;
  content?: string;
}

/** One output's split as its text arrives: push each text delta, then finish at the end of the output. */
export interface ReasoningStream {
  push(textDelta: string): ReasoningDelta;
  finish(): ReasoningDelta;
}

export interface ReasoningParser {
  readonly name: string;
  /** The text that opens reasoning when the model writes it itself. */
  readonly startMarker: string;
  /** The text that ends reasoning: after it, the output is content. */
  readonly endMarker: string;
  /** Whether an output starts as reasoning when the options do not say. */
  readonly startsInReasoning: boolean;
  extract(text: string, options?: ReasoningOptions): ReasoningSplit;
  stream(options?: ReasoningOptions): ReasoningStream;
}

export const REASONING_PARSERS: Record<string, () => ReasoningParser> = {
  qwen3: qwen3ReasoningParser,
  deepseek_r1: deepSeekR1ReasoningParser,
};

export function reasoningParser(name: string): ReasoningParser {
  const create = REASONING_PARSERS[name];
  if (!create) {
    throw new Error(`unknown reasoning parser "${name}"; known: ${Object.keys(REASONING_PARSERS).join(", ")}`);
  }
  return create();
}
