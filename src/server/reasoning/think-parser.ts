// `<think>…</think>` reasoning, as Qwen3 and DeepSeek-R1 write it. An output that opens with
// `<think>` (after whitespace) is reasoning up to `</think>`, content after; cut off before
// `</think>` (max_tokens), it is all reasoning. Otherwise the output starts as reasoning when the
// prompt opened the block (DeepSeek-R1's template always does; see ReasoningOptions), else as content.
//
// Qwen3's thinking models (2507) open the block in their prompt, and Qwen3's parser is often run for
// them without the option: as vLLM's, its whole-text split then also reads `reasoning</think>content`
// as reasoning. Streamed, that cannot be known before `</think>` arrives, and holding the whole
// output back would stall every output that has no reasoning: such a stream sends the text before
// `</think>` as content and drops the marker. Passing `inReasoning` makes the two agree.
import { NonBlankText, nonBlank, partialMarkerLength } from "../text-stream.ts";
import type {
  ReasoningDelta,
  ReasoningOptions,
  ReasoningParser,
  ReasoningSplit,
  ReasoningStream,
} from "./reasoning-parser.ts";

const START = "<think>";
const END = "</think>";

/** The length of the output's opening `<think>` with the whitespace before it, 0 when it has none. */
function openingLength(text: string): number {
  const rest = text.trimStart();
  return rest.startsWith(START) ? text.length - rest.length + START.length : 0;
}

/** What the text before `</think>` is when the output does not open with `<think>`: null for content through to the end. */
function beforeEnd(startsInReasoning: boolean, options: ReasoningOptions): "reasoning" | "content" | null {
  if (options.inReasoning ?? startsInReasoning) return "reasoning";
  return options.inReasoning === undefined ? "content" : null;
}

function extract(text: string, startsInReasoning: boolean, options: ReasoningOptions): ReasoningSplit {
  const opening = openingLength(text);
  const before = opening > 0 ? "reasoning" : beforeEnd(startsInReasoning, options);
  const body = text.slice(opening);
  const end = body.indexOf(END);
  if (before === "reasoning" && end < 0) return { reasoning: nonBlank(body), content: null };
  if (before === null || end < 0) return { reasoning: null, content: nonBlank(text) };
  return { reasoning: nonBlank(body.slice(0, end)), content: nonBlank(body.slice(end + END.length)) };
}

class ThinkStream implements ReasoningStream {
  private text = "";
  private position = 0;
  private state: "start" | "before-end" | "content" = "start";
  private readonly reasoning = new NonBlankText();
  private readonly content = new NonBlankText();
  // The channel for the text before `</think>`, once the start of the output has decided it.
  private before = this.reasoning;
  private delta: ReasoningDelta = {};

  constructor(
    private readonly startsInReasoning: boolean,
    private readonly options: ReasoningOptions,
  ) {}

  push(textDelta: string): ReasoningDelta {
    this.text += textDelta;
    this.advance(false);
    return this.take();
  }

  finish(): ReasoningDelta {
    this.advance(true);
    return this.take();
  }

  private advance(final: boolean): void {
    if (this.state === "start") {
      // Until the output is more than whitespace and a part of `<think>`, it may still open the block.
      const rest = this.text.trimStart();
      if (!final && rest.length < START.length && START.startsWith(rest)) return;
      this.position = openingLength(this.text);
      const before = this.position > 0 ? "reasoning" : beforeEnd(this.startsInReasoning, this.options);
      this.before = before === "content" ? this.content : this.reasoning;
      this.state = before === null ? "content" : "before-end";
    }
    if (this.state === "before-end") {
      const end = this.text.indexOf(END, this.position);
      if (end < 0) {
        this.send(this.before, this.text.length - (final ? 0 : partialMarkerLength(this.text, this.position, END)));
        return;
      }
      this.send(this.before, end);
      this.position = end + END.length;
      this.state = "content";
    }
    this.send(this.content, this.text.length);
  }

  private send(channel: NonBlankText, end: number): void {
    const visible = channel.push(this.text.slice(this.position, end));
    this.position = end;
    if (!visible) return;
    const key = channel === this.reasoning ? "reasoning" : "content";
    this.delta[key] = (this.delta[key] ?? "") + visible;
  }

  private take(): ReasoningDelta {
    const delta = this.delta;
    this.delta = {};
    return delta;
  }
}

function thinkParser(name: string, startsInReasoning: boolean): ReasoningParser {
  return {
    name,
    startMarker: START,
    endMarker: END,
    startsInReasoning,
    extract: (text, options = {}) => extract(text, startsInReasoning, options),
    stream: (options = {}) => new ThinkStream(startsInReasoning, options),
  };
}

/** Qwen3: reasoning only when the output opens `<think>` (thinking can be switched off per request). */
export function qwen3ReasoningParser(): ReasoningParser {
  return thinkParser("qwen3", false);
}

/** DeepSeek-R1: its template opens `<think>` in the prompt, so the output starts as reasoning. */
export function deepSeekR1ReasoningParser(): ReasoningParser {
  return thinkParser("deepseek_r1", true);
}
