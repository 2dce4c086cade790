// Hermes-style tool calls, as Hermes 2 Pro, Qwen2.5 and Qwen3 write them: each call a JSON object
// `{"name": "f", "arguments": {...}}` between `<tool_call>` and `</tool_call>` lines, several in a
// row; text around them is content. A last call cut off before `</tool_call>` (max_tokens) still
// counts when its object is complete.
import { partialMarkerLength } from "../text-stream.ts";
import { openAiToolCallId } from "./tool-call-ids.ts";
import { extractToolCalls, ToolCallMachine } from "./tool-call-machine.ts";
import type { ToolParser } from "./tool-parser.ts";

const OPEN = "<tool_call>";
const CLOSE = "</tool_call>";

class HermesStream extends ToolCallMachine {
  private state: "content" | "open" | "call" | "close" = "content";

  constructor() {
    super(openAiToolCallId);
  }

  protected step(final: boolean): boolean {
    switch (this.state) {
      case "content": {
        const start = this.text.indexOf(OPEN, this.position);
        if (start < 0) {
          this.sendContent(this.text.length - (final ? 0 : partialMarkerLength(this.text, this.position, OPEN)));
          return false;
        }
        this.sendContent(start);
        this.openBlock(start);
        this.position = start + OPEN.length;
        this.state = "open";
        return true;
      }
      case "open":
        if (!this.skipWhitespace()) return this.awaitMore(final);
        if (!this.startCall(["arguments"])) return false;
        this.state = "call";
        return true;
      case "call":
        if (!this.readCall(final)) return false;
        this.state = "close";
        return true;
      case "close": {
        this.skipWhitespace();
        const close = this.matchMarker(CLOSE);
        if (close === "mismatch") return this.fail();
        // Partial at the end of the output: the call is complete, only its closing markup was cut.
        if (close === "partial") return false;
        this.position += CLOSE.length;
        this.state = "content";
        return true;
      }
    }
  }
}

export function hermesToolParser(): ToolParser {
  return {
    name: "hermes",
    extract: (text) => extractToolCalls(new HermesStream(), text),
    stream: () => new HermesStream(),
  };
}
