// GET /v1/models: the served models, in OpenAI's list shape with vLLM's extra fields.
import { maxModelLen, type ServerContext } from "./context.ts";

export function listModels(context: ServerContext, startedAt: number): Response {
  return Response.json({
    object: "list",
    data: context.models.map((model) => ({
      id: model.servedModelName,
      object: "model",
      created: startedAt,
      owned_by: "vllm-ts",
      root: model.engine.source.ggufFile ?? model.engine.source.dir ?? model.engine.source.name,
      parent: null,
      max_model_len: maxModelLen(model),
    })),
  });
}
