// Llama 3.x JSON tool calls: the whole output, optionally after `<|python_tag|>`, is one or more JSON
// objects `{"name": "f", "parameters": {...}}` ("arguments" also accepted) separated by `;`. Output
// that starts with anything else is content, such as the python tag before a built-in tool's Python.
import { openAiToolCallId } from "./tool-call-ids.ts";
import { extractToolCalls, ToolCallMachine } from "./tool-call-machine.ts";
import type { ToolParser } from "./tool-parser.ts";

const PYTHON_TAG = "<|python_tag|>";
const ARGUMENT_KEYS = ["parameters", "arguments"];

// The calls' block is the whole output, the machine's default: a malformed call makes it all content.
class Llama3JsonStream extends ToolCallMachine {
  private state: "start" | "call-start" | "call" | "separator" = "start";

  constructor() {
    super(openAiToolCallId);
  }

  protected step(final: boolean): boolean {
    switch (this.state) {
      case "start": {
        if (!this.skipWhitespace()) return final && this.asContent(0);
        const tag = this.matchMarker(PYTHON_TAG);
        if (tag === "partial" && !final) return false;
        if (tag === "match") this.position += PYTHON_TAG.length;
        else if (this.text[this.position] !== "{") return this.asContent(0);
        this.state = "call-start";
        return true;
      }
      case "call-start":
        if (!this.skipWhitespace()) return this.awaitMore(final);
        if (!this.startCall(ARGUMENT_KEYS)) return false;
        this.state = "call";
        return true;
      case "call":
        if (!this.readCall(final)) return false;
        this.state = "separator";
        return true;
      case "separator":
        if (!this.skipWhitespace()) return false;
        if (this.text[this.position] !== ";") return this.fail();
        this.position++;
        this.state = "call-start";
        return true;
    }
  }
}

export function llama3JsonToolParser(): ToolParser {
  return {
    name: "llama3_json",
    extract: (text) => extractToolCalls(new Llama3JsonStream(), text),
    stream: () => new Llama3JsonStream(),
  };
}
