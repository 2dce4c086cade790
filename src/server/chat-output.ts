// A chat choice's text as OpenAI's message: the reasoning split off (--reasoning-parser), then the
// tool calls taken out of what remains, as the request's tool mode says. Whole for a response,
// and streamed for chat.completion.chunk deltas, where no markup may reach `content`.
import type { ReasoningParser } from "./reasoning/reasoning-parser.ts";
import { openAiToolCallId } from "./tool-parsers/tool-call-ids.ts";
import {
  type ParsedToolCall,
  type ToolCallDelta,
  type ToolCallStream,
  toolParser,
} from "./tool-parsers/tool-parser.ts";
import type { ToolMode } from "./tools.ts";

export interface ChatOutputOptions {
  mode: ToolMode;
  reasoning: ReasoningParser | null;
  /** The rendered prompt ends inside a reasoning block. */
  inReasoning: boolean;
  /** The rendered prompt already closed the reasoning (e.g. Qwen3 with thinking off). */
  closedByPrompt: boolean;
}

export interface ChatMessageParts {
  content: string | null;
  reasoning: string | null;
  toolCalls: ParsedToolCall[];
}

export interface ChatDelta {
  content?: string;
  reasoning?: string;
  toolCalls?: ToolCallDelta[];
}

/** A "required" output: the JSON list of {name, parameters} its grammar allows. Null if cut short. */
function requiredCalls(text: string): ParsedToolCall[] | null {
  try {
    const list = JSON.parse(text) as { name: string; parameters: unknown }[];
    return list.map((call) => ({
      id: openAiToolCallId(),
      name: call.name,
      arguments: JSON.stringify(call.parameters),
    }));
  } catch {
    return null;
  }
}

function splitReasoning(text: string, options: ChatOutputOptions): { reasoning: string | null; content: string } {
  if (!options.reasoning) return { reasoning: null, content: text };
  const split = options.reasoning.extract(text, { inReasoning: options.inReasoning });
  return { reasoning: split.reasoning, content: split.content ?? "" };
}

export function chatMessageParts(text: string, options: ChatOutputOptions): ChatMessageParts {
  const { reasoning, content } = splitReasoning(text, options);
  const { mode } = options;
  switch (mode.kind) {
    case "none":
      return { reasoning, content: reasoning === null ? content : content || null, toolCalls: [] };
    case "auto": {
      const extracted = toolParser(mode.parser).extract(content);
      return { reasoning, content: extracted.content, toolCalls: extracted.toolCalls };
    }
    case "named":
      return {
        reasoning,
        content: null,
        toolCalls: [{ id: openAiToolCallId(), name: mode.name, arguments: content.trim() }],
      };
    case "required": {
      const calls = requiredCalls(content);
      return calls ? { reasoning, content: null, toolCalls: calls } : { reasoning, content, toolCalls: [] };
    }
  }
}

/** The tool stage of a stream: what content becomes once reasoning is split off. */
interface ContentStream {
  push(text: string): ChatDelta;
  finish(): ChatDelta;
}

function contentStream(mode: ToolMode): ContentStream {
  switch (mode.kind) {
    case "none":
      return { push: (text) => (text ? { content: text } : {}), finish: () => ({}) };
    case "auto": {
      const stream: ToolCallStream = toolParser(mode.parser).stream();
      return { push: (text) => stream.push(text), finish: () => stream.finish() };
    }
    case "named": {
      // The arguments stream as they are generated, after one delta naming the call.
      let opened = false;
      return {
        push(text) {
          if (!text) return {};
          const first = opened ? {} : { id: openAiToolCallId(), name: mode.name };
          opened = true;
          return { toolCalls: [{ index: 0, ...first, arguments: text }] };
        },
        finish: () =>
          opened ? {} : { toolCalls: [{ index: 0, id: openAiToolCallId(), name: mode.name, arguments: "" }] },
      };
    }
    case "required": {
      // The list is parsed whole at the end; each call then goes out in one delta.
      let text = "";
      return {
        push(delta) {
          text += delta;
          return {};
        },
        finish() {
          const calls = requiredCalls(text);
          if (!calls) return text ? { content: text } : {};
          return {
            toolCalls: calls.map((call, index) => ({ index, id: call.id, name: call.name, arguments: call.arguments })),
          };
        },
      };
    }
  }
}

/** Two deltas as one, in order. */
export function mergeDeltas(a: ChatDelta, b: ChatDelta): ChatDelta {
  const merged: ChatDelta = {};
  const content = (a.content ?? "") + (b.content ?? "");
  const reasoning = (a.reasoning ?? "") + (b.reasoning ?? "");
  if (content) merged.content = content;
  if (reasoning) merged.reasoning = reasoning;
  const calls = [...(a.toolCalls ?? []), ...(b.toolCalls ?? [])];
  if (calls.length > 0) merged.toolCalls = calls;
  return merged;
}

/** One choice's stream: text deltas in, message deltas out. */
export class ChatDeltaStream {
  private readonly reasoning;
  private readonly content: ContentStream;
  /** Whether any tool call went out, which makes a "stop" finish "tool_calls". */
  sawToolCalls = false;

  constructor(options: ChatOutputOptions) {
    this.reasoning = options.reasoning?.stream({ inReasoning: options.inReasoning }) ?? null;
    this.content = contentStream(options.mode);
  }

  push(text: string): ChatDelta {
    if (!this.reasoning) return this.note(this.content.push(text));
    const split = this.reasoning.push(text);
    return this.note(mergeDeltas({ reasoning: split.reasoning }, this.content.push(split.content ?? "")));
  }

  finish(): ChatDelta {
    let delta: ChatDelta = {};
    if (this.reasoning) {
      const split = this.reasoning.finish();
      delta = mergeDeltas({ reasoning: split.reasoning }, this.content.push(split.content ?? ""));
    }
    return this.note(mergeDeltas(delta, this.content.finish()));
  }

  private note(delta: ChatDelta): ChatDelta {
    if (delta.toolCalls?.length) this.sawToolCalls = true;
    return delta;
  }
}
