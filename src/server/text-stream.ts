// Helpers for model text that arrives in pieces, split anywhere: markers that may be cut in two,
// and channels whose whole text counts as absent (null) when it is only whitespace.

/** How many characters at the end of text, from `from` on, could begin `marker` and must wait for the next piece. */
export function partialMarkerLength(text: string, from: number, marker: string): number {
  for (let length = Math.min(marker.length - 1, text.length - from); length > 0; length--) {
    if (text.endsWith(marker.slice(0, length))) return length;
  }
  return 0;
}

/** The whole-text reading of a channel: null when there is nothing but whitespace, as vLLM returns it. */
export function nonBlank(text: string): string | null {
  return /\S/.test(text) ? text : null;
}

/**
 * The streamed reading of the same channel: leading whitespace waits until visible text follows, so a
 * channel that only ever carries whitespace sends nothing, as its whole-text reading is null.
 */
export class NonBlankText {
  private held = "";
  private started = false;

  /** The text to send now for this piece. */
  push(text: string): string {
    if (this.started) return text;
    this.held += text;
    if (!/\S/.test(text)) return "";
    this.started = true;
    return this.held;
  }
}
