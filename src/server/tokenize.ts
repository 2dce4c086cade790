// POST /tokenize and /detokenize, as vLLM: text or a conversation (rendered like a chat request)
// to token ids, and back, with the tokenizer of the model the request names.
import { chatPromptTokenIds } from "./chat-prompt.ts";
import { maxModelLen, routeModel, type ServerContext } from "./context.ts";
import { detokenizeRequestSchema, tokenizeRequestSchema } from "./schemas.ts";

export function tokenize(server: ServerContext, body: unknown): Response {
  const request = tokenizeRequestSchema.parse(body);
  const context = routeModel(server, request.model);
  const { tokenizer } = context.engine;
  const tokens =
    "prompt" in request
      ? tokenizer.encode(request.prompt, { addSpecialTokens: request.add_special_tokens ?? true })
      : chatPromptTokenIds(context, request);
  return Response.json({ count: tokens.length, max_model_len: maxModelLen(context), tokens });
}

export function detokenize(server: ServerContext, body: unknown): Response {
  const request = detokenizeRequestSchema.parse(body);
  return Response.json({ prompt: routeModel(server, request.model).engine.tokenizer.decode(request.tokens) });
}
