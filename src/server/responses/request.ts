// A Responses API request (OpenAI's POST /v1/responses) as the chat request it amounts to. The
// server keeps no state, so the whole conversation comes in `input`: messages, the model's earlier
// function calls and their outputs, and its earlier reasoning. Fields that would need stored
// responses, hosted tools or other modalities are refused by name.
import { z } from "zod";
import { quoteInput } from "../../quote-input.ts";
import { ApiError } from "../errors.ts";
import type { ChatCompletionRequest, ChatMessageInput } from "../schemas.ts";

/** Text parts of a message; other kinds (images, files, audio) are checked for by type. */
const contentPart = z.looseObject({ type: z.string(), text: z.string().optional() });
const content = z.union([z.string(), z.array(contentPart)]);

const messageItem = z.looseObject({
  type: z.literal("message"),
  role: z.enum(["user", "assistant", "system", "developer"]),
  content,
});
const functionCallItem = z.looseObject({
  type: z.literal("function_call"),
  call_id: z.string(),
  name: z.string(),
  arguments: z.string(),
});
const functionCallOutputItem = z.looseObject({
  type: z.literal("function_call_output"),
  call_id: z.string(),
  output: content,
});
const reasoningItem = z.looseObject({
  type: z.literal("reasoning"),
  content: z.array(contentPart).nullish(),
});
const inputItem = z.preprocess(
  // Easy input messages ({role, content}) carry no type.
  (item) =>
    typeof item === "object" && item !== null && !("type" in item) && "role" in item
      ? { ...item, type: "message" }
      : item,
  z.discriminatedUnion("type", [messageItem, functionCallItem, functionCallOutputItem, reasoningItem]),
);

const functionTool = z.looseObject({
  type: z.string(),
  name: z.string().min(1).optional(),
  description: z.string().nullish(),
  parameters: z.record(z.string(), z.unknown()).nullish(),
  strict: z.boolean().nullish(),
});

const textFormat = z.looseObject({
  type: z.enum(["text", "json_object", "json_schema"]),
  name: z.string().nullish(),
  schema: z.record(z.string(), z.unknown()).nullish(),
  strict: z.boolean().nullish(),
});

export const responsesRequestSchema = z.object({
  model: z.string().nullish(),
  // A string is the user's one message.
  input: z.preprocess(
    (input) => (typeof input === "string" ? [{ role: "user", content: input }] : input),
    z.array(inputItem),
  ),
  instructions: z.string().nullish(),
  max_output_tokens: z.number().int().nullish(),
  temperature: z.number().nullish(),
  top_p: z.number().nullish(),
  stream: z.boolean().nullish(),
  text: z.looseObject({ format: textFormat.nullish() }).nullish(),
  tools: z.array(functionTool).nullish(),
  tool_choice: z
    .union([z.enum(["none", "auto", "required"]), z.looseObject({ type: z.string(), name: z.string().optional() })])
    .nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  // Informational: the response says it was not stored; metadata is echoed back.
  store: z.boolean().nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  user: z.string().nullish(),
});
export type ResponsesRequest = z.infer<typeof responsesRequestSchema>;

/** Fields that would change the answer and that a stateless, text-only server cannot honour. */
const UNSUPPORTED_FIELDS: Record<string, string> = {
  previous_response_id: "this server stores no responses: send the whole conversation in input",
  conversation: "this server stores no conversations: send the whole conversation in input",
  prompt: "this server has no stored prompt templates",
  reasoning: "reasoning settings are not supported: the model reasons as its chat template says",
  top_logprobs: "logprobs are not supported on /v1/responses; use /v1/chat/completions",
  max_tool_calls: "max_tool_calls is not supported",
};

export function refuseUnsupportedResponseFields(body: unknown): void {
  if (typeof body !== "object" || body === null) return;
  const fields = body as Record<string, unknown>;
  for (const [field, why] of Object.entries(UNSUPPORTED_FIELDS)) {
    if (fields[field] !== undefined && fields[field] !== null) throw new ApiError(400, `${field}: ${why}`, field);
  }
  if (fields.background === true)
    throw new ApiError(400, "background: responses run in the foreground here", "background");
  if (Array.isArray(fields.include) && fields.include.length > 0)
    throw new ApiError(400, `include: ${quoteInput(String(fields.include[0]))} is not supported`, "include");
  if (fields.truncation !== undefined && fields.truncation !== null && fields.truncation !== "disabled")
    throw new ApiError(400, 'truncation: only "disabled" is supported; a conversation too long is a 400', "truncation");
  const text = fields.text as { verbosity?: unknown } | null | undefined;
  if (text?.verbosity !== undefined && text.verbosity !== null)
    throw new ApiError(400, "text.verbosity is not supported: the model has no verbosity setting", "text.verbosity");
}

function partsText(parts: z.infer<typeof content>, param: string): string {
  if (typeof parts === "string") return parts;
  return parts
    .map((part, i) => {
      const isText = part.type === "input_text" || part.type === "output_text" || part.type === "reasoning_text";
      if (!isText || part.text === undefined)
        throw new ApiError(
          400,
          `content part of type "${quoteInput(part.type)}" is not supported by this text-only model`,
          `${param}.${i}`,
        );
      return part.text;
    })
    .join("");
}

/** The conversation as chat messages: function calls join the assistant turn they belong to. */
function chatMessages(request: ResponsesRequest): ChatMessageInput[] {
  const messages: ChatMessageInput[] = [];
  if (request.instructions) messages.push({ role: "system", content: request.instructions });
  const callNames = new Map<string, string>();
  let reasoning: string | null = null;
  // The assistant turn that function calls join: the message just before them, or a new one.
  const assistantTurn = (): ChatMessageInput => {
    const last = messages.at(-1);
    if (last?.role === "assistant") return last;
    const turn: ChatMessageInput = { role: "assistant", content: "" };
    messages.push(turn);
    return turn;
  };
  for (const [i, item] of request.input.entries()) {
    const param = `input.${i}`;
    switch (item.type) {
      case "message":
        messages.push({ role: item.role, content: partsText(item.content, `${param}.content`) });
        break;
      case "reasoning":
        reasoning = (reasoning ?? "") + partsText(item.content ?? [], `${param}.content`);
        continue;
      case "function_call": {
        const turn = assistantTurn();
        const calls = (turn.tool_calls as unknown[] | undefined) ?? [];
        turn.tool_calls = [
          ...calls,
          { id: item.call_id, type: "function", function: { name: item.name, arguments: item.arguments } },
        ];
        callNames.set(item.call_id, item.name);
        break;
      }
      case "function_call_output":
        messages.push({
          role: "tool",
          tool_call_id: item.call_id,
          ...(callNames.has(item.call_id) ? { name: callNames.get(item.call_id) } : {}),
          content: partsText(item.output, `${param}.output`),
        });
        break;
    }
    // Earlier reasoning goes with the assistant turn it preceded (templates read reasoning_content).
    const last = messages.at(-1)!;
    if (reasoning !== null && last.role === "assistant") {
      last.reasoning_content = reasoning;
      reasoning = null;
    }
  }
  if (messages.length === 0) throw new ApiError(400, "input must not be empty", "input");
  return messages;
}

function chatTools(request: ResponsesRequest): ChatCompletionRequest["tools"] {
  return request.tools?.map((tool, i) => {
    if (tool.type !== "function")
      throw new ApiError(
        400,
        `tools.${i}: tool type "${quoteInput(tool.type)}" is not supported: this server runs function tools only`,
        `tools.${i}.type`,
      );
    if (!tool.name) throw new ApiError(400, `tools.${i}: a function tool needs a name`, `tools.${i}.name`);
    const { name, description, parameters, strict } = tool;
    return { type: "function" as const, function: { name, description, parameters, strict } };
  });
}

function chatToolChoice(choice: ResponsesRequest["tool_choice"]): ChatCompletionRequest["tool_choice"] {
  if (choice === null || choice === undefined || typeof choice === "string") return choice;
  if (choice.type !== "function" || !choice.name)
    throw new ApiError(
      400,
      `tool_choice of type "${quoteInput(choice.type)}" is not supported (use none, auto, required or a function by name)`,
      "tool_choice",
    );
  return { type: "function", function: { name: choice.name } };
}

function responseFormat(request: ResponsesRequest): ChatCompletionRequest["response_format"] {
  const format = request.text?.format;
  if (!format || format.type === "text") return null;
  if (format.type === "json_object") return { type: "json_object" };
  if (!format.schema) throw new ApiError(400, "text.format json_schema needs a schema", "text.format.schema");
  return { type: "json_schema", json_schema: { name: format.name, schema: format.schema, strict: format.strict } };
}

export function chatRequestOf(request: ResponsesRequest): ChatCompletionRequest {
  return {
    model: request.model,
    messages: chatMessages(request),
    max_tokens: request.max_output_tokens,
    temperature: request.temperature,
    top_p: request.top_p,
    tools: chatTools(request),
    tool_choice: chatToolChoice(request.tool_choice),
    parallel_tool_calls: request.parallel_tool_calls,
    response_format: responseFormat(request),
  };
}
