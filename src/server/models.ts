// GET /v1/models: the served model, in OpenAI's list shape with vLLM's extra fields.
import { maxModelLen, type ServerContext } from "./context.ts";

export function listModels(context: ServerContext, startedAt: number): Response {
  const { source } = context.engine;
  return Response.json({
    object: "list",
    data: [
      {
        id: context.servedModelName,
        object: "model",
        created: startedAt,
        owned_by: "vllm-ts",
        root: source.dir ?? source.name,
        parent: null,
        max_model_len: maxModelLen(context),
      },
    ],
  });
}
