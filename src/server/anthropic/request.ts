// An Anthropic Messages API request (POST /v1/messages) as the chat request it amounts to:
// `system` becomes the system message, tool_use blocks the assistant's tool calls, tool_result
// blocks tool messages, thinking blocks the assistant's earlier reasoning. Anthropic's server-side
// features (hosted tools, MCP servers, containers, thinking budgets) are refused by name.
import { z } from "zod";
import { quoteInput } from "../../quote-input.ts";
import { ApiError } from "../errors.ts";
import type { ChatCompletionRequest, ChatMessageInput } from "../schemas.ts";
import { textAsParts, typedUnion } from "../typed-union.ts";

const textBlock = z.looseObject({ type: z.literal("text"), text: z.string() });
const toolResultContent = textAsParts("text", z.array(typedUnion(["text"], "tool_result content", textBlock)));

const BLOCK_TYPES = ["text", "tool_use", "tool_result", "thinking", "redacted_thinking"] as const;
const contentBlock = typedUnion(
  BLOCK_TYPES,
  "a content block",
  z.discriminatedUnion("type", [
    textBlock,
    z.looseObject({ type: z.literal("tool_use"), id: z.string(), name: z.string(), input: z.unknown() }),
    z.looseObject({
      type: z.literal("tool_result"),
      tool_use_id: z.string(),
      content: toolResultContent.nullish(),
      is_error: z.boolean().nullish(),
    }),
    z.looseObject({ type: z.literal("thinking"), thinking: z.string() }),
    z.looseObject({ type: z.literal("redacted_thinking") }),
  ]),
);
type ContentBlock = z.infer<typeof contentBlock>;

const message = z.object({
  role: z.enum(["user", "assistant"]),
  content: textAsParts("text", z.array(contentBlock)),
});

const tool = z.looseObject({
  name: z.string().min(1),
  description: z.string().nullish(),
  // Required of custom tools; Anthropic's own tools (refused) have none.
  input_schema: z.record(z.string(), z.unknown()).nullish(),
  type: z.string().nullish(),
});

export const messagesRequestSchema = z.object({
  model: z.string(),
  max_tokens: z.number().int(),
  messages: z.array(message).min(1),
  system: z.union([z.string(), z.array(textBlock)]).nullish(),
  stop_sequences: z.array(z.string()).nullish(),
  // Sampling settings of the API's earlier versions, which clients still send: honoured.
  temperature: z.number().nullish(),
  top_p: z.number().nullish(),
  top_k: z.number().int().nullish(),
  stream: z.boolean().nullish(),
  tools: z.array(tool).nullish(),
  tool_choice: z
    .looseObject({
      type: z.enum(["auto", "any", "tool", "none"]),
      name: z.string().optional(),
      disable_parallel_tool_use: z.boolean().optional(),
    })
    .nullish(),
  thinking: z.looseObject({ type: z.enum(["enabled", "disabled", "adaptive"]) }).nullish(),
  output_config: z
    .looseObject({
      effort: z.string().nullish(),
      format: z.looseObject({ type: z.literal("json_schema"), schema: z.record(z.string(), z.unknown()) }).nullish(),
    })
    .nullish(),
  // Informational.
  metadata: z.looseObject({ user_id: z.string().nullish() }).nullish(),
  service_tier: z.string().nullish(),
});

/** /v1/messages/count_tokens takes a message request without its output settings. */
export const countTokensRequestSchema = messagesRequestSchema.extend({ max_tokens: z.number().int().nullish() });
/** Either request: what the conversion reads. */
type MessageFields = z.infer<typeof countTokensRequestSchema>;

/** Fields that ask for what only Anthropic's own servers do. */
const UNSUPPORTED_FIELDS = ["container", "mcp_servers", "context_management"] as const;

export function refuseUnsupportedMessageFields(body: unknown): void {
  if (typeof body !== "object" || body === null) return;
  const fields = body as Record<string, unknown>;
  const set = UNSUPPORTED_FIELDS.filter((field) => fields[field] !== undefined && fields[field] !== null);
  if (set.length > 0) throw new ApiError(400, `this server does not support ${set.join(", ")}`, set[0]!);
}

function blocksText(blocks: readonly { text: string }[]): string {
  return blocks.map((block) => block.text).join("");
}

/** A user turn: its tool results first, as tool messages, then its text. */
function userMessages(blocks: readonly ContentBlock[]): ChatMessageInput[] {
  const messages: ChatMessageInput[] = [];
  let text = "";
  for (const block of blocks) {
    if (block.type === "text") text += block.text;
    else if (block.type === "tool_result") {
      const content = blocksText(block.content ?? []);
      messages.push({
        role: "tool",
        tool_call_id: block.tool_use_id,
        content: block.is_error ? `Error: ${content}` : content,
      });
    } else throw new ApiError(400, `a user message cannot hold a ${block.type} block`, "messages");
  }
  if (text || messages.length === 0) messages.push({ role: "user", content: text });
  return messages;
}

/** An assistant turn: its text, its earlier reasoning and its tool calls, as one chat message. */
function assistantMessage(blocks: readonly ContentBlock[]): ChatMessageInput {
  let content = "";
  let reasoning = "";
  const toolCalls: object[] = [];
  for (const block of blocks) {
    if (block.type === "text") content += block.text;
    else if (block.type === "thinking") reasoning += block.thinking;
    else if (block.type === "tool_use")
      toolCalls.push({
        id: block.id,
        type: "function",
        function: { name: block.name, arguments: JSON.stringify(block.input ?? {}) },
      });
    // Redacted thinking is encrypted by the provider that wrote it: nothing a template can show.
    else if (block.type !== "redacted_thinking")
      throw new ApiError(400, `an assistant message cannot hold a ${block.type} block`, "messages");
  }
  return {
    role: "assistant",
    content,
    ...(reasoning ? { reasoning_content: reasoning } : {}),
    ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
  };
}

function chatMessages(request: MessageFields): ChatMessageInput[] {
  const messages: ChatMessageInput[] = [];
  const { system } = request;
  if (system) messages.push({ role: "system", content: typeof system === "string" ? system : blocksText(system) });
  for (const { role, content } of request.messages)
    messages.push(...(role === "user" ? userMessages(content) : [assistantMessage(content)]));
  return messages;
}

function chatTools(request: MessageFields): ChatCompletionRequest["tools"] {
  return request.tools?.map((tool, i) => {
    if (tool.type !== undefined && tool.type !== null && tool.type !== "custom")
      throw new ApiError(
        400,
        `tools.${i}: tool type "${quoteInput(tool.type)}" is one of Anthropic's own tools; this server runs custom tools only`,
        `tools.${i}.type`,
      );
    if (!tool.input_schema)
      throw new ApiError(400, `tools.${i}: a custom tool needs an input_schema`, `tools.${i}.input_schema`);
    return {
      type: "function" as const,
      function: { name: tool.name, description: tool.description, parameters: tool.input_schema },
    };
  });
}

function chatToolChoice(
  choice: MessageFields["tool_choice"],
): Pick<ChatCompletionRequest, "tool_choice" | "parallel_tool_calls"> {
  if (!choice) return {};
  const parallel_tool_calls =
    choice.disable_parallel_tool_use === undefined ? undefined : !choice.disable_parallel_tool_use;
  switch (choice.type) {
    case "auto":
      return { tool_choice: "auto", parallel_tool_calls };
    case "any":
      return { tool_choice: "required", parallel_tool_calls };
    case "none":
      return { tool_choice: "none" };
    case "tool":
      if (!choice.name) throw new ApiError(400, 'tool_choice of type "tool" needs a name', "tool_choice.name");
      return { tool_choice: { type: "function", function: { name: choice.name } }, parallel_tool_calls };
  }
}

/**
 * "adaptive" (the model decides) is what a local model does anyway. Thinking budgets cannot be
 * enforced; turning thinking off is passed to the chat template as `enable_thinking: false`, the
 * switch templates with optional reasoning read (Qwen3's).
 */
function thinkingKwargs(thinking: MessageFields["thinking"]): Record<string, unknown> | undefined {
  if (!thinking || thinking.type === "adaptive") return undefined;
  if (thinking.type === "enabled")
    throw new ApiError(
      400,
      "thinking budgets are not supported: omit `thinking` and the model reasons as its chat template says (with --reasoning-parser, as thinking blocks)",
      "thinking",
    );
  return { enable_thinking: false };
}

/** output_config: a JSON schema the answer must follow, as chat's json_schema response format. */
function responseFormat(config: MessageFields["output_config"]): ChatCompletionRequest["response_format"] {
  if (config?.effort)
    throw new ApiError(
      400,
      "output_config.effort is not supported: the model has no effort setting",
      "output_config.effort",
    );
  if (!config?.format) return null;
  return { type: "json_schema", json_schema: { name: "output", schema: config.format.schema } };
}

export function chatRequestOf(request: MessageFields): ChatCompletionRequest {
  return {
    model: request.model,
    messages: chatMessages(request),
    max_tokens: request.max_tokens,
    stop: request.stop_sequences,
    temperature: request.temperature,
    top_p: request.top_p,
    top_k: request.top_k,
    tools: chatTools(request),
    ...chatToolChoice(request.tool_choice),
    chat_template_kwargs: thinkingKwargs(request.thinking),
    response_format: responseFormat(request.output_config),
  };
}
