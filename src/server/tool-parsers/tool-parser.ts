// Tool-call parsers, as vLLM's `--tool-call-parser`: they find the calls a model wrote in its output
// text, whole or streamed in pieces split anywhere, and give them in OpenAI's shapes.
//
// Rules shared by every parser:
// - A call's `arguments` is the arguments object exactly as the model wrote it (so already trimmed);
//   streamed, its fragments concatenate to that same text.
// - Text outside calls is content; a content channel that is only whitespace is absent (null).
// - Streamed, markup never reaches content: text that could begin a marker waits until it is decided.
// - Output that is not well-formed tool calls is content, all of it, in whole-text extraction (as vLLM
//   does when its parse fails). Streamed, a parser cannot take back what it sent: a call is sent once
//   its name is read and its arguments object begins; if the block holding it then proves malformed
//   (or the output ends inside it), the rest of the output is dropped. A block that proves malformed
//   before any of its calls was sent goes out as content, raw, with the rest of the output; so when
//   no call came before it, the stream matches whole-text extraction exactly.
import { hermesToolParser } from "./hermes.ts";
import { llama3JsonToolParser } from "./llama3-json.ts";
import { mistralToolParser } from "./mistral.ts";

export interface ParsedToolCall {
  id: string;
  name: string;
  /** JSON text of the arguments object. */
  arguments: string;
}

/** A chat.completion.chunk tool-call delta: id and name come first, then fragments of the arguments. */
export interface ToolCallDelta {
  index: number;
  id?: string;
  name?: string;
  arguments?: string;
}

export interface ExtractedToolCalls {
  content: string | null;
  toolCalls: ParsedToolCall[];
}

export interface ToolCallStreamDelta {
  content?: string;
  toolCalls?: ToolCallDelta[];
}

/** One output's parse as its text arrives: push each text delta, then finish at the end of the output. */
export interface ToolCallStream {
  push(textDelta: string): ToolCallStreamDelta;
  finish(): ToolCallStreamDelta;
}

export interface ToolParser {
  readonly name: string;
  extract(text: string): ExtractedToolCalls;
  stream(): ToolCallStream;
}

export const TOOL_PARSERS: Record<string, () => ToolParser> = {
  hermes: hermesToolParser,
  llama3_json: llama3JsonToolParser,
  mistral: mistralToolParser,
};

export function toolParser(name: string): ToolParser {
  const create = TOOL_PARSERS[name];
  if (!create) {
    throw new Error(`unknown tool-call parser "${name}"; known: ${Object.keys(TOOL_PARSERS).join(", ")}`);
  }
  return create();
}
