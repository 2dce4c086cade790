// POST /tokenize and /detokenize, as vLLM: text or a conversation (rendered like a chat request)
// to token ids, and back.
import { chatPromptTokenIds } from "./chat-prompt.ts";
import { checkModel, maxModelLen, type ServerContext } from "./context.ts";
import { detokenizeRequestSchema, tokenizeRequestSchema } from "./schemas.ts";

export function tokenize(context: ServerContext, body: unknown): Response {
  const request = tokenizeRequestSchema.parse(body);
  checkModel(context, request.model);
  const { tokenizer } = context.engine;
  const tokens =
    "prompt" in request
      ? tokenizer.encode(request.prompt, { addSpecialTokens: request.add_special_tokens ?? true })
      : chatPromptTokenIds(context, request);
  return Response.json({ count: tokens.length, max_model_len: maxModelLen(context), tokens });
}

export function detokenize(context: ServerContext, body: unknown): Response {
  const request = detokenizeRequestSchema.parse(body);
  checkModel(context, request.model);
  return Response.json({ prompt: context.engine.tokenizer.decode(request.tokens) });
}
