// Finds where a JSON value ends in text that arrives a piece at a time. Strings, escapes and nesting
// are tracked and nothing else is checked: JSON.parse validates the value once it is complete.

const PRIMITIVE_CHAR = /[\w.+-]/;

export class JsonValueScanner {
  /** The offset just past the value, once it is complete. */
  end: number | undefined;
  private position: number;
  private depth = 0;
  private inString = false;
  private escaped = false;

  /** `start` is the offset of the value's first character. */
  constructor(readonly start: number) {
    this.position = start;
  }

  /** The offset up to which the text is known to belong to the value. */
  get scanned(): number {
    return this.end ?? this.position;
  }

  /** Reads the text that arrived since the last call; returns the value's end once it is known. */
  scan(text: string): number | undefined {
    if (this.end !== undefined || this.position >= text.length) return this.end;
    return '{["'.includes(text[this.start]!) ? this.scanNested(text) : this.scanPrimitive(text);
  }

  private scanNested(text: string): number | undefined {
    for (; this.position < text.length; this.position++) {
      const char = text[this.position];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (char === "\\") this.escaped = true;
        else if (char === '"') {
          this.inString = false;
          if (this.depth === 0) return this.close();
        }
      } else if (char === '"') this.inString = true;
      else if (char === "{" || char === "[") this.depth++;
      else if (char === "}" || char === "]") {
        this.depth--;
        if (this.depth === 0) return this.close();
      }
    }
    return undefined;
  }

  // A number, true, false or null ends at the first character that cannot continue it, which may
  // not have arrived yet.
  private scanPrimitive(text: string): number | undefined {
    while (this.position < text.length && PRIMITIVE_CHAR.test(text[this.position]!)) this.position++;
    if (this.position < text.length) this.end = this.position;
    return this.end;
  }

  private close(): number {
    this.position++;
    this.end = this.position;
    return this.end;
  }
}

/** Whether text is JSON whitespace, the only kind JSON allows between tokens. */
export function isJsonWhitespace(char: string | undefined): boolean {
  return char === " " || char === "\n" || char === "\r" || char === "\t";
}
