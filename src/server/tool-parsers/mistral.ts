// Mistral tool calls after `[TOOL_CALLS]`: a JSON array `[{"name": "f", "arguments": {...}}, ...]`
// with older tokenizers, or from tokenizer v11 on `f[ARGS]{...}`, one `[TOOL_CALLS]` before each call.
// Text before the first `[TOOL_CALLS]` is content. The markers are special tokens: the text must be
// detokenized with them kept.
import { partialMarkerLength } from "../text-stream.ts";
import { JsonValueScanner } from "./json-scan.ts";
import { mistralToolCallId } from "./tool-call-ids.ts";
import { extractToolCalls, ToolCallMachine } from "./tool-call-machine.ts";
import type { ToolParser } from "./tool-parser.ts";

const TOOL_CALLS = "[TOOL_CALLS]";
const ARGS = "[ARGS]";
const NAME_CHAR = /[\w.-]/;

type State =
  | "content"
  | "calls"
  | "name"
  | "args"
  | "args-value"
  | "after"
  | "array-item"
  | "array-call"
  | "array-next";

class MistralStream extends ToolCallMachine {
  private state: State = "content";
  private nameStart = 0;
  private name = "";
  private args: JsonValueScanner | undefined;

  constructor() {
    super(mistralToolCallId);
  }

  protected step(final: boolean): boolean {
    switch (this.state) {
      case "content": {
        const start = this.text.indexOf(TOOL_CALLS, this.position);
        if (start < 0) {
          this.sendContent(this.text.length - (final ? 0 : partialMarkerLength(this.text, this.position, TOOL_CALLS)));
          return false;
        }
        this.sendContent(start);
        this.openBlock(start);
        this.position = start + TOOL_CALLS.length;
        this.state = "calls";
        return true;
      }
      case "calls": {
        if (!this.skipWhitespace()) return this.awaitMore(final);
        const char = this.text[this.position]!;
        if (char === "[") {
          this.position++;
          this.state = "array-item";
          return true;
        }
        if (!NAME_CHAR.test(char)) return this.fail();
        this.nameStart = this.position;
        this.state = "name";
        return true;
      }
      case "name": {
        while (NAME_CHAR.test(this.text[this.position] ?? "")) this.position++;
        const args = this.matchMarker(ARGS);
        if (args === "mismatch") return this.fail();
        if (args === "partial") return this.awaitMore(final);
        this.name = this.text.slice(this.nameStart, this.position);
        this.position += ARGS.length;
        this.state = "args";
        return true;
      }
      case "args":
        if (!this.skipWhitespace()) return this.awaitMore(final);
        if (this.text[this.position] !== "{") return this.fail();
        this.args = new JsonValueScanner(this.position);
        this.state = "args-value";
        return true;
      case "args-value": {
        const args = this.args!;
        const end = args.scan(this.text);
        this.followCall(this.name, args);
        if (end === undefined) return this.awaitMore(final);
        if (!isJson(this.text.slice(args.start, end))) return this.fail();
        this.closeCall();
        this.position = end;
        this.state = "after";
        return true;
      }
      case "after": {
        if (!this.skipWhitespace()) return false;
        const next = this.matchMarker(TOOL_CALLS);
        if (next === "mismatch") return this.fail();
        // Partial at the end of the output: the calls are complete, only the next marker was cut.
        if (next === "partial") return false;
        this.position += TOOL_CALLS.length;
        this.state = "calls";
        return true;
      }
      case "array-item":
        if (!this.skipWhitespace()) return this.awaitMore(final);
        if (this.text[this.position] === "]") {
          this.position++;
          this.state = "after";
          return true;
        }
        if (!this.startCall(["arguments"])) return false;
        this.state = "array-call";
        return true;
      case "array-call":
        if (!this.readCall(final)) return false;
        this.state = "array-next";
        return true;
      case "array-next": {
        if (!this.skipWhitespace()) return this.awaitMore(final);
        const char = this.text[this.position];
        if (char !== "," && char !== "]") return this.fail();
        this.position++;
        this.state = char === "," ? "array-item" : "after";
        return true;
      }
    }
  }
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

export function mistralToolParser(): ToolParser {
  return {
    name: "mistral",
    extract: (text) => extractToolCalls(new MistralStream(), text),
    stream: () => new MistralStream(),
  };
}
