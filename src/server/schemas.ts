// Request bodies of the OpenAI-compatible endpoints, as zod schemas. They check types only;
// value ranges are SamplingParams' to check, so each rule lives in one place. null reads as "not
// set", as OpenAI's clients send it. Fields OpenAI defines that would change the output but that
// this server does not implement are refused by name; other unknown fields are dropped, as vLLM
// ignores them (informational ones such as `user`, `metadata` or `store` among them).
import { z } from "zod";
import { ApiError } from "./errors.ts";
import { structuredOutputFields } from "./structured-outputs.ts";
import { toolFields } from "./tools.ts";

const isTokenId = (value: unknown) => Number.isSafeInteger(value) && (value as number) >= 0;
const isTokenIdList = (value: unknown) => Array.isArray(value) && value.every(isTokenId);

/**
 * Lists of a body's length (a million token ids, or prompts) are checked in one loop each: through
 * zod's per-element checks (and, for a prompt, its union's other alternatives tried first) they
 * held the event loop for seconds.
 */
function listOf<T>(isItem: (value: unknown) => boolean, error: string) {
  return z.custom<T[]>((value) => Array.isArray(value) && value.every(isItem), { error });
}

const tokenIds = listOf<number>(isTokenId, "must be a list of token ids (integers >= 0)");

/**
 * Token id → bias, read as entries into a Map: copied into an object (as z.record does), a key
 * such as "__proto__" would vanish instead of being refused as the token id it is not.
 */
const logitBias = z.preprocess(
  (value) =>
    typeof value === "object" && value !== null && !Array.isArray(value) ? new Map(Object.entries(value)) : value,
  z.map(z.string(), z.number(), { error: "must be an object of token ids to biases" }),
);

/** Fields shared by /v1/completions and /v1/chat/completions: OpenAI's and vLLM's extras. */
const generationFields = {
  model: z.string().nullish(),
  n: z.number().int().nullish(),
  max_tokens: z.number().int().nullish(),
  temperature: z.number().nullish(),
  top_p: z.number().nullish(),
  seed: z.number().int().nullish(),
  presence_penalty: z.number().nullish(),
  frequency_penalty: z.number().nullish(),
  logit_bias: logitBias.nullish(),
  stop: z.union([z.string(), z.array(z.string())]).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  user: z.string().nullish(),
  top_k: z.number().int().nullish(),
  min_p: z.number().nullish(),
  repetition_penalty: z.number().nullish(),
  min_tokens: z.number().int().nullish(),
  ignore_eos: z.boolean().nullish(),
  stop_token_ids: tokenIds.nullish(),
  skip_special_tokens: z.boolean().nullish(),
  include_stop_str_in_output: z.boolean().nullish(),
  ...structuredOutputFields,
};

export const completionRequestSchema = z.object({
  ...generationFields,
  prompt: z.union([
    z.string(),
    tokenIds,
    listOf<string>((value) => typeof value === "string", "must be a list of strings"),
    listOf<number[]>(isTokenIdList, "must be a list of token id lists"),
  ]),
  echo: z.boolean().nullish(),
  logprobs: z.number().int().nullish(),
  suffix: z.string().nullish(),
});
export type CompletionRequest = z.infer<typeof completionRequestSchema>;

/** Text parts are joined; other parts (images, audio) need a model this engine does not run. */
const contentPart = z.looseObject({ type: z.string(), text: z.string().optional() });

const chatMessage = z.looseObject({
  role: z.enum(["system", "developer", "user", "assistant", "tool"]),
  content: z.union([z.string(), z.array(contentPart)]).nullish(),
});
export type ChatMessageInput = z.infer<typeof chatMessage>;

/** The conversation and how to render it: shared by chat completions and /tokenize. */
const chatPromptFields = {
  messages: z.array(chatMessage).min(1),
  add_generation_prompt: z.boolean().nullish(),
  chat_template_kwargs: z.record(z.string(), z.unknown()).nullish(),
  tools: toolFields.tools,
};

export const chatCompletionRequestSchema = z.object({
  ...generationFields,
  ...chatPromptFields,
  max_completion_tokens: z.number().int().nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().nullish(),
  tool_choice: toolFields.tool_choice,
  parallel_tool_calls: toolFields.parallel_tool_calls,
});
export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;

export const tokenizeRequestSchema = z.union([
  z.object({ model: z.string().nullish(), prompt: z.string(), add_special_tokens: z.boolean().nullish() }),
  z.object({ model: z.string().nullish(), ...chatPromptFields, add_special_tokens: z.boolean().nullish() }),
]);
export type TokenizeRequest = z.infer<typeof tokenizeRequestSchema>;

export const detokenizeRequestSchema = z.object({ model: z.string().nullish(), tokens: tokenIds });

/** OpenAI's fields that change the output and that this server does not implement, per endpoint. */
const UNSUPPORTED_FIELDS = {
  chat: ["audio", "prediction", "web_search_options", "functions", "function_call", "reasoning_effort", "verbosity"],
  completions: ["best_of"],
} as const;

/** A request must not be answered as if a field it set had been honoured. */
export function refuseUnsupportedFields(body: unknown, endpoint: keyof typeof UNSUPPORTED_FIELDS): void {
  if (typeof body !== "object" || body === null) return;
  const fields = body as Record<string, unknown>;
  const set: string[] = UNSUPPORTED_FIELDS[endpoint].filter(
    (field) => fields[field] !== undefined && fields[field] !== null,
  );
  // Text is the only modality, so asking for exactly that is fine.
  const modalities = fields.modalities;
  if (endpoint === "chat" && Array.isArray(modalities) && modalities.some((m) => m !== "text")) set.push("modalities");
  if (set.length > 0) {
    throw new ApiError(400, `this server does not support ${set.join(", ")}`, set[0]!);
  }
}
