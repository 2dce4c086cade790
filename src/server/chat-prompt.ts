// A conversation as prompt token ids: OpenAI messages → the model's chat template → tokens. The
// template writes the special tokens itself, so the text is encoded without adding any more.
import type { ChatMessage } from "../model/chat-template.ts";
import { quoteInput } from "../quote-input.ts";
import type { ModelContext } from "./context.ts";
import { ApiError } from "./errors.ts";
import { encodeChat } from "./prompt-tokens.ts";
import type { ChatMessageInput } from "./schemas.ts";

export interface ChatPromptFields {
  messages: ChatMessageInput[];
  add_generation_prompt?: boolean | null;
  chat_template_kwargs?: Record<string, unknown> | null;
  tools?: unknown[] | null;
}

/** Content parts become plain text: this engine runs text-only models. */
function messageText(message: ChatMessageInput, index: number): string {
  if (typeof message.content === "string") return message.content;
  if (!message.content) return "";
  return message.content
    .map((part, p) => {
      if (part.type !== "text" || part.text === undefined) {
        throw new ApiError(
          400,
          `content part of type "${quoteInput(part.type)}" is not supported by this text-only model`,
          `messages.${index}.content.${p}`,
        );
      }
      return part.text;
    })
    .join("");
}

/**
 * OpenAI sends a call's arguments as JSON text; templates index them (Llama 3's `| tojson`), so
 * they get the object, as vLLM gives them. Text that is not JSON stays text.
 */
function templateToolCalls(toolCalls: unknown): unknown {
  if (!Array.isArray(toolCalls)) return toolCalls;
  return toolCalls.map((call) => {
    const fn = call?.function;
    if (typeof fn?.arguments !== "string") return call;
    try {
      return { ...call, function: { ...fn, arguments: JSON.parse(fn.arguments) } };
    } catch {
      return call;
    }
  });
}

/** The conversation's prompt and its token ids, the text measured and rendered as prompt-tokens.ts decides. */
export function chatPrompt(
  context: ModelContext,
  fields: ChatPromptFields,
): Promise<{ prompt: string; tokenIds: number[] }> {
  const { tokenizer } = context.engine;
  let bytes = 0;
  const messages: ChatMessage[] = fields.messages.map((message, i) => {
    const content = messageText(message, i);
    bytes += Buffer.byteLength(content);
    return {
      ...message,
      // Templates written before OpenAI's "developer" role know it as "system".
      role: message.role === "developer" ? "system" : message.role,
      content,
      ...(message.tool_calls !== undefined ? { tool_calls: templateToolCalls(message.tool_calls) } : {}),
    };
  });
  const input = {
    messages,
    addGenerationPrompt: fields.add_generation_prompt ?? true,
    bosToken: tokenizer.bosToken,
    eosToken: tokenizer.eosToken,
    tools: fields.tools,
    extra: fields.chat_template_kwargs ?? undefined,
  };
  return encodeChat(context, context.chatTemplate ?? tokenizer.chatTemplate, input, bytes);
}
