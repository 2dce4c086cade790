// POST /tokenize and /detokenize, as vLLM: text or a conversation (rendered like a chat request)
// to token ids, and back, with the tokenizer of the model the request names. Both are open routes:
// long inputs are measured and tokenized as a generation's are, off the HTTP thread.
import { chatPrompt } from "./chat-prompt.ts";
import { maxModelLen, routeModel, type ServerContext } from "./context.ts";
import { decodeTokenIds, encodeText } from "./prompt-tokens.ts";
import { detokenizeRequestSchema, tokenizeRequestSchema } from "./schemas.ts";

export async function tokenize(server: ServerContext, body: unknown): Promise<Response> {
  const request = tokenizeRequestSchema.parse(body);
  const context = routeModel(server, request.model);
  const tokens =
    "prompt" in request
      ? await encodeText(context, request.prompt, {
          addSpecialTokens: request.add_special_tokens ?? true,
          field: "prompt",
        })
      : (await chatPrompt(context, request)).tokenIds;
  return Response.json({ count: tokens.length, max_model_len: maxModelLen(context), tokens });
}

export async function detokenize(server: ServerContext, body: unknown): Promise<Response> {
  const request = detokenizeRequestSchema.parse(body);
  return Response.json({ prompt: await decodeTokenIds(routeModel(server, request.model), request.tokens) });
}
