// A chat choice as a sequence of typed blocks (reasoning, text, tool calls), which is how both the
// Responses API (output items) and Anthropic's Messages API (content blocks) present an answer.
// The chat output's deltas, which may interleave kinds, become block events: a block opens, grows
// and closes before the next one opens.
import type { ChatDelta, ChatMessageParts } from "./chat-output.ts";

export type Block =
  | { kind: "reasoning"; text: string }
  | { kind: "text"; text: string }
  /** A tool call; its text is the arguments' JSON. */
  | { kind: "tool_call"; id: string; name: string; text: string };

export type BlockEvent =
  | { type: "start"; index: number; block: Block }
  | { type: "delta"; index: number; block: Block; text: string }
  /** The block is complete: block.text holds all of it. */
  | { type: "stop"; index: number; block: Block };

/** A whole message's blocks, in the order a stream would have opened them. */
export function messageBlocks(parts: ChatMessageParts): Block[] {
  const blocks: Block[] = [];
  if (parts.reasoning) blocks.push({ kind: "reasoning", text: parts.reasoning });
  if (parts.content) blocks.push({ kind: "text", text: parts.content });
  for (const call of parts.toolCalls)
    blocks.push({ kind: "tool_call", id: call.id, name: call.name, text: call.arguments });
  return blocks;
}

/** One choice's deltas in, block events out. */
export class BlockStream {
  readonly blocks: Block[] = [];
  private open: Block | null = null;
  private events: BlockEvent[] = [];
  /** Each tool call's block, by the call's index in the choice. */
  private readonly callBlocks = new Map<number, Block>();

  push(delta: ChatDelta): BlockEvent[] {
    this.events = [];
    if (delta.reasoning) this.append("reasoning", delta.reasoning);
    if (delta.content) this.append("text", delta.content);
    for (const call of delta.toolCalls ?? []) {
      // A call's first delta names it; the ones after only carry more of its arguments, and
      // parsers finish one call's arguments before anything else follows.
      if (call.id !== undefined) {
        this.start({ kind: "tool_call", id: call.id, name: call.name ?? "", text: "" });
        this.callBlocks.set(call.index, this.open!);
      }
      if (this.open !== this.callBlocks.get(call.index))
        throw new Error(`tool call ${call.index}'s arguments arrived after its block closed`);
      if (call.arguments) this.grow(call.arguments);
    }
    return this.events;
  }

  finish(): BlockEvent[] {
    this.events = [];
    this.stop();
    return this.events;
  }

  private append(kind: "reasoning" | "text", text: string): void {
    if (this.open?.kind !== kind) this.start({ kind, text: "" });
    this.grow(text);
  }

  private start(block: Block): void {
    this.stop();
    this.blocks.push(block);
    this.open = block;
    this.events.push({ type: "start", index: this.blocks.length - 1, block });
  }

  private grow(text: string): void {
    const block = this.open!;
    block.text += text;
    this.events.push({ type: "delta", index: this.blocks.length - 1, block, text });
  }

  private stop(): void {
    if (!this.open) return;
    this.events.push({ type: "stop", index: this.blocks.length - 1, block: this.open });
    this.open = null;
  }
}
