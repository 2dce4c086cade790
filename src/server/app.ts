// The HTTP surface: routes to handlers, the Host and the API key checked, JSON wanted on /v1, CORS
// for web pages, and one rule for failures: every request gets an answer in its protocol's error
// shape (Anthropic's on /v1/messages, OpenAI's elsewhere), whatever a handler throws.
import packageJson from "../../package.json";
import { quoteInput } from "../quote-input.ts";
import { type AllowedHosts, checkHost } from "./allowed-hosts.ts";
import { anthropicErrorResponse } from "./anthropic/errors.ts";
import { countMessageTokens, createMessage } from "./anthropic/messages.ts";
import { checkApiKey } from "./auth.ts";
import { checkJsonContentType, readJsonBody, UnreadBodyError } from "./body.ts";
import { createChatCompletion } from "./chat-completions.ts";
import { createCompletion } from "./completions.ts";
import type { ServerContext } from "./context.ts";
import type { CorsPolicy } from "./cors.ts";
import { ApiError, errorResponse, toApiError } from "./errors.ts";
import { renderMetrics } from "./metrics.ts";
import { listModels } from "./models.ts";
import { createResponse } from "./responses/create-response.ts";
import { detokenize, tokenize } from "./tokenize.ts";
import { unixSeconds } from "./usage.ts";

type Handler = (request: Request) => Response | Promise<Response>;

/** What the HTTP layer checks before any handler runs, and how long a body may take. */
export interface HttpOptions {
  /** Host names the server answers to (--allowed-hosts), or null for any. */
  allowedHosts: AllowedHosts;
  /** A request's body must arrive in full within this (--request-body-timeout). */
  requestBodyTimeoutMs: number;
  /** Which web pages may call the server (--allowed-origins and friends). */
  cors: CorsPolicy;
}

/** The methods a route answers: HEAD wherever GET is. */
function methodsOf(route: Record<string, Handler>): string[] {
  const methods = Object.keys(route);
  return route.GET ? [...methods, "HEAD"] : methods;
}

export function createApp(
  context: ServerContext,
  http: HttpOptions,
  onInternalError: (error: unknown) => void,
): (request: Request) => Promise<Response> {
  const startedAt = unixSeconds();
  const json = (request: Request) =>
    readJsonBody(request, { maxBytes: context.maxBodyBytes, timeoutMs: http.requestBodyTimeoutMs });
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
    "/v1/responses": { POST: async (request) => createResponse(context, await json(request), request.signal) },
    "/v1/messages": { POST: async (request) => createMessage(context, await json(request), request.signal) },
    "/v1/messages/count_tokens": { POST: async (request) => countMessageTokens(context, await json(request)) },
  };

  const answer = async (request: Request): Promise<Response> => {
    const { pathname } = new URL(request.url);
    try {
      checkHost(request, http.allowedHosts);
      const preflight = http.cors.preflight(request);
      if (preflight) return preflight;
      const { method } = request;
      const route = routes[pathname];
      if (!route) throw new ApiError(404, `no route ${quoteInput(method)} ${quoteInput(pathname)}`);
      const handler = route[method] ?? (method === "HEAD" ? route.GET : undefined);
      if (!handler)
        throw new ApiError(405, `${pathname} accepts ${methodsOf(route).join(", ")}, not ${quoteInput(method)}`);
      const isApi = pathname.startsWith("/v1/");
      if (context.apiKey !== null && isApi) checkApiKey(request, context.apiKey);
      if (isApi && method === "POST") checkJsonContentType(request);
      const response = await handler(request);
      // HEAD answers as GET would, without the body.
      return method === "HEAD" ? new Response(null, { status: response.status, headers: response.headers }) : response;
    } catch (error) {
      const apiError = toApiError(error);
      // A client gone mid-body fails the read; its leaving is logged once, elsewhere.
      if (apiError.status === 500 && !request.signal.aborted) onInternalError(error);
      const headers = apiError instanceof UnreadBodyError ? { Connection: "close" } : undefined;
      // Anthropic's clients read errors in Anthropic's shape.
      const isAnthropic = pathname.startsWith("/v1/messages");
      return (isAnthropic ? anthropicErrorResponse : errorResponse)(apiError, headers);
    }
  };
  // Errors included: a page must be able to read why its request failed.
  return async (request) => http.cors.decorate(request, await answer(request));
}
