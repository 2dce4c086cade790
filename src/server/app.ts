// The HTTP surface: routes to handlers, the API key on /v1, and one rule for failures: every
// request gets an answer in OpenAI's error shape, whatever a handler throws.
import packageJson from "../../package.json";
import { checkApiKey } from "./auth.ts";
import { readJsonBody } from "./body.ts";
import { createChatCompletion } from "./chat-completions.ts";
import { createCompletion } from "./completions.ts";
import type { ServerContext } from "./context.ts";
import { ApiError, errorResponse, toApiError } from "./errors.ts";
import { renderMetrics } from "./metrics.ts";
import { listModels } from "./models.ts";
import { detokenize, tokenize } from "./tokenize.ts";
import { unixSeconds } from "./usage.ts";

type Handler = (request: Request) => Response | Promise<Response>;

export function createApp(
  context: ServerContext,
  onInternalError: (error: unknown) => void,
): (request: Request) => Promise<Response> {
  const startedAt = unixSeconds();
  const json = (request: Request) => readJsonBody(request, context.maxBodyBytes);
  const routes: Record<string, Record<string, Handler>> = {
    // Unhealthy once any model's engine core has failed, so an orchestrator restarts the server.
    "/health": {
      GET: () => {
        const failed = context.models.find((model) => model.engine.failure);
        if (failed) throw new ApiError(503, `${failed.servedModelName}: ${failed.engine.failure!.message}`);
        return new Response(null, { status: 200 });
      },
    },
    "/version": { GET: () => Response.json({ version: packageJson.version }) },
    "/metrics": {
      GET: async () => {
        const reports = await Promise.all(
          context.models.map(async ({ metrics, engine }) => ({ metrics, stats: await engine.stats() })),
        );
        return new Response(renderMetrics(reports), {
          headers: { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" },
        });
      },
    },
    "/tokenize": { POST: async (request) => tokenize(context, await json(request)) },
    "/detokenize": { POST: async (request) => detokenize(context, await json(request)) },
    "/v1/models": { GET: () => listModels(context, startedAt) },
    "/v1/completions": { POST: async (request) => createCompletion(context, await json(request), request.signal) },
    "/v1/chat/completions": {
      POST: async (request) => createChatCompletion(context, await json(request), request.signal),
    },
  };

  return async (request) => {
    try {
      const { pathname } = new URL(request.url);
      const route = routes[pathname];
      if (!route) throw new ApiError(404, `no route ${request.method} ${pathname}`);
      const handler = route[request.method];
      if (!handler)
        throw new ApiError(405, `${pathname} accepts ${Object.keys(route).join(", ")}, not ${request.method}`);
      if (context.apiKey !== null && pathname.startsWith("/v1/")) checkApiKey(request, context.apiKey);
      return await handler(request);
    } catch (error) {
      const apiError = toApiError(error);
      if (apiError.status === 500) onInternalError(error);
      return errorResponse(apiError);
    }
  };
}
