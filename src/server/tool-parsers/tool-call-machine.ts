// What every tool parser shares: the growing text and a read position, content sent through with its
// whitespace rule, calls announced and their arguments streamed, and the fallback to content when the
// output proves malformed (the rules are in tool-parser.ts). A parser supplies `step`, its state
// machine; whole-text extraction is the same parse over the whole text at once, so the two agree by
// construction.
import { NonBlankText, nonBlank } from "../text-stream.ts";
import { CallObjectReader } from "./call-object.ts";
import { isJsonWhitespace, type JsonValueScanner } from "./json-scan.ts";
import type {
  ExtractedToolCalls,
  ParsedToolCall,
  ToolCallDelta,
  ToolCallStream,
  ToolCallStreamDelta,
} from "./tool-parser.ts";

export abstract class ToolCallMachine implements ToolCallStream {
  /** Set once the output proved not to be well-formed tool calls. */
  malformed = false;
  protected text = "";
  protected position = 0;
  /** The call object being read, for parsers that write calls as JSON objects. */
  protected call: CallObjectReader | undefined;
  private mode: "parse" | "content" | "ignore" = "parse";
  private readonly content = new NonBlankText();
  private delta: ToolCallStreamDelta = {};
  private callCount = 0;
  private block = { start: 0, callCount: 0 };
  // The offset up to which the open call's arguments were sent; undefined while no call is open.
  private argumentsSent: number | undefined;

  constructor(private readonly newId: () => string) {}

  push(textDelta: string): ToolCallStreamDelta {
    this.text += textDelta;
    this.advance(false);
    return this.take();
  }

  finish(): ToolCallStreamDelta {
    this.advance(true);
    return this.take();
  }

  /**
   * Reads from the read position in the parser's current state; returns whether to step again (the
   * state changed) or to wait for more text. `final` when no more text will come.
   */
  protected abstract step(final: boolean): boolean;

  /** Sends the text from the read position up to `end` as content. */
  protected sendContent(end: number): void {
    const visible = this.content.push(this.text.slice(this.position, end));
    if (visible) this.delta.content = (this.delta.content ?? "") + visible;
    this.position = end;
  }

  /** The rest of the output, from `start` on, is content. */
  protected asContent(start: number): false {
    this.mode = "content";
    this.position = start;
    return false;
  }

  /** A block of tool-call markup begins at `start`: the text that goes out as content if it proves malformed. */
  protected openBlock(start: number): void {
    this.block = { start, callCount: this.callCount };
  }

  /**
   * The markup proved malformed. Calls of its block already sent cannot be taken back, so the rest of
   * the output is dropped; with none sent, the block and all after it are content.
   */
  protected fail(): false {
    this.malformed = true;
    if (this.callCount > this.block.callCount) this.mode = "ignore";
    else this.asContent(this.block.start);
    return false;
  }

  /** Nothing more to read for now: at the end of the output, the markup is cut short. */
  protected awaitMore(final: boolean): false {
    return final && this.fail();
  }

  /** Moves past whitespace; returns whether a character follows. */
  protected skipWhitespace(): boolean {
    while (isJsonWhitespace(this.text[this.position])) this.position++;
    return this.position < this.text.length;
  }

  /** Compares the text at the read position with a marker that may have arrived only in part. */
  protected matchMarker(marker: string): "match" | "partial" | "mismatch" {
    const rest = this.text.slice(this.position, this.position + marker.length);
    if (rest === marker) return "match";
    return marker.startsWith(rest) ? "partial" : "mismatch";
  }

  /** A call object must begin at the read position. */
  protected startCall(argumentKeys: readonly string[]): boolean {
    if (this.text[this.position] !== "{") return this.fail();
    this.call = new CallObjectReader(this.position, argumentKeys);
    return true;
  }

  /** Reads the call object begun by startCall; returns whether it is complete, the read position past it. */
  protected readCall(final: boolean): boolean {
    const call = this.call!;
    const state = call.read(this.text);
    this.followCall(call.name, call.arguments);
    if (state === "done") {
      this.closeCall();
      this.position = call.end!;
      return true;
    }
    if (state === "malformed" || final) this.fail();
    return false;
  }

  /** Sends what is new of a call: its id and name once both are known, then its arguments as they grow. */
  protected followCall(name: string | undefined, args: JsonValueScanner | undefined): void {
    if (name === undefined || args === undefined) return;
    if (this.argumentsSent === undefined) {
      this.sendCallDelta({ index: this.callCount++, id: this.newId(), name, arguments: "" });
      this.argumentsSent = args.start;
    }
    if (args.scanned <= this.argumentsSent) return;
    this.sendCallDelta({ index: this.callCount - 1, arguments: this.text.slice(this.argumentsSent, args.scanned) });
    this.argumentsSent = args.scanned;
  }

  /** The call whose arguments just ended is complete. */
  protected closeCall(): void {
    this.argumentsSent = undefined;
  }

  private advance(final: boolean): void {
    let more = this.mode === "parse";
    while (more) more = this.step(final);
    if (this.mode === "content") this.sendContent(this.text.length);
  }

  // Fragments of one call within one delta join, so a call's first delta carries what arrived with its name.
  private sendCallDelta(callDelta: ToolCallDelta): void {
    const calls = this.delta.toolCalls ?? [];
    this.delta.toolCalls = calls;
    const last = calls.at(-1);
    if (last?.index === callDelta.index) last.arguments = (last.arguments ?? "") + callDelta.arguments;
    else calls.push(callDelta);
  }

  private take(): ToolCallStreamDelta {
    const delta = this.delta;
    this.delta = {};
    return delta;
  }
}

/** Whole-text extraction: the stream's parse over the whole text, or all of it as content when malformed. */
export function extractToolCalls(stream: ToolCallMachine, text: string): ExtractedToolCalls {
  const deltas = [stream.push(text), stream.finish()];
  if (stream.malformed) return { content: nonBlank(text), toolCalls: [] };
  let content = "";
  const toolCalls: ParsedToolCall[] = [];
  for (const delta of deltas) {
    content += delta.content ?? "";
    for (const call of delta.toolCalls ?? []) addDelta(toolCalls, call);
  }
  return { content: content || null, toolCalls };
}

function addDelta(toolCalls: ParsedToolCall[], delta: ToolCallDelta): void {
  const known = toolCalls[delta.index];
  if (known) known.arguments += delta.arguments ?? "";
  else toolCalls[delta.index] = { id: delta.id!, name: delta.name!, arguments: delta.arguments ?? "" };
}
