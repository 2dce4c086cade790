// Renders a conversation into prompt text with the model's Jinja chat template, passing the same
// variables as transformers' apply_chat_template so templates written for it render identically.

import { Template } from "@huggingface/jinja";

export type ChatRole = "system" | "user" | "assistant" | "tool";

/** Fields beyond role and content (tool_calls, tool_call_id, name, ...) reach the template as given. */
export interface ChatMessage {
  role: ChatRole;
  content: string;
  [field: string]: unknown;
}

export interface ChatTemplateInput {
  messages: readonly ChatMessage[];
  addGenerationPrompt: boolean;
  bosToken?: string | null;
  eosToken?: string | null;
  tools?: readonly unknown[] | null;
  /** chat_template_kwargs of the request, e.g. { enable_thinking: false }. */
  extra?: Record<string, unknown>;
}

/** A conversation the chat template refuses or cannot render, or a model without a template. */
export class ChatTemplateError extends Error {
  override name = "ChatTemplateError";
}

// A server renders the same template for every request: parse each template once.
const parsedTemplates = new Map<string, Template>();

function parse(template: string): Template {
  let parsed = parsedTemplates.get(template);
  if (!parsed) {
    try {
      parsed = new Template(template);
    } catch (error) {
      throw new ChatTemplateError(`the chat template does not parse: ${(error as Error).message}`);
    }
    parsedTemplates.set(template, parsed);
  }
  return parsed;
}

export function renderChatTemplate(template: string | null, input: ChatTemplateInput): string {
  if (!template) {
    throw new ChatTemplateError(
      "the model has no chat template (tokenizer_config.json has no chat_template); " +
        "pass a Jinja template file with --chat-template",
    );
  }
  const parsed = parse(template);
  const context = {
    // transformers leaves unset special tokens undefined rather than None.
    bos_token: input.bosToken ?? undefined,
    eos_token: input.eosToken ?? undefined,
    // Request kwargs may override the special-token strings, as in transformers, but never the
    // conversation itself.
    ...input.extra,
    messages: input.messages,
    tools: input.tools ?? null,
    add_generation_prompt: input.addGenerationPrompt,
  };
  try {
    return parsed.render(context);
  } catch (error) {
    // The library defines raise_exception itself (it cannot be overridden) as a plain Error with
    // the template's message, so every render failure is reported alike, as vLLM does.
    throw new ChatTemplateError(`the chat template failed on this conversation: ${(error as Error).message}`);
  }
}
