// Reads a tool call written as a JSON object, `{"name": "f", "arguments": {...}}`, from text that
// grows: it tells as early as possible which function is called and where its arguments object
// begins, so the arguments can be streamed while the model is still writing them. Other keys are
// allowed and ignored (Llama 3 adds `"type": "function"`), in any order.
import { isJsonWhitespace, JsonValueScanner } from "./json-scan.ts";

export type CallReadState = "pending" | "done" | "malformed";

export class CallObjectReader {
  /** The function's name, once its string is complete. */
  name: string | undefined;
  /** The arguments object, once it has begun. */
  arguments: JsonValueScanner | undefined;
  /** The offset just past the object, once it is complete. */
  end: number | undefined;
  private position: number;
  // What the next token must be; a key or a value being scanned has `scanner` set.
  private expect: "first-key" | "key" | "colon" | "value" | "next" = "first-key";
  private key = "";
  private scanner: JsonValueScanner | undefined;

  /** `start` is the offset of the object's `{`; `argumentKeys` name the key that holds the arguments. */
  constructor(
    readonly start: number,
    private readonly argumentKeys: readonly string[],
  ) {
    this.position = start + 1;
  }

  /** Reads the text that arrived since the last call. */
  read(text: string): CallReadState {
    for (;;) {
      if (this.scanner) {
        const end = this.scanner.scan(text);
        if (end === undefined) return "pending";
        if (!this.take(text.slice(this.scanner.start, end))) return "malformed";
        this.scanner = undefined;
        this.position = end;
        continue;
      }
      while (isJsonWhitespace(text[this.position])) this.position++;
      const char = text[this.position];
      if (char === undefined) return "pending";
      switch (this.expect) {
        case "first-key":
        case "key":
          if (char === "}" && this.expect === "first-key") return this.close(text);
          if (char !== '"') return "malformed";
          this.expect = "colon";
          this.scanner = new JsonValueScanner(this.position);
          break;
        case "colon":
          if (char !== ":") return "malformed";
          this.expect = "value";
          this.position++;
          break;
        case "value":
          this.expect = "next";
          this.scanner = new JsonValueScanner(this.position);
          if (this.argumentKeys.includes(this.key)) {
            if (char !== "{" || this.arguments) return "malformed";
            this.arguments = this.scanner;
          }
          break;
        case "next":
          if (char === "}") return this.close(text);
          if (char !== ",") return "malformed";
          this.expect = "key";
          this.position++;
          break;
      }
    }
  }

  // A key or a value has just been scanned: `expect` already names what follows it.
  private take(raw: string): boolean {
    if (this.expect === "colon") {
      const key = parseString(raw);
      this.key = key ?? "";
      return key !== undefined;
    }
    if (this.key !== "name") return true;
    if (this.name !== undefined) return false;
    this.name = parseString(raw);
    return this.name !== undefined;
  }

  private close(text: string): CallReadState {
    this.end = this.position + 1;
    if (this.name === undefined || this.arguments === undefined) return "malformed";
    try {
      JSON.parse(text.slice(this.start, this.end));
      return "done";
    } catch {
      return "malformed";
    }
  }
}

function parseString(raw: string): string | undefined {
  try {
    const value: unknown = JSON.parse(raw);
    return typeof value === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}
