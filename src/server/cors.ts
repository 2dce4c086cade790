// Cross-origin requests from web pages, as vLLM's --allowed-origins, --allowed-methods,
// --allowed-headers and --allow-credentials configure them (Starlette's CORS middleware): a
// preflight OPTIONS is answered with what the policy allows, and every answer to a request that
// names its Origin says whether that origin may read it. Without these headers a browser page
// cannot call the server at all: POSTs to /v1 need JSON, which makes every one of them preflighted.
import { quoteInput } from "../quote-input.ts";
import { UsageError } from "../usage-error.ts";
import { ApiError } from "./errors.ts";

export interface CorsOptions {
  /** Origins allowed to read answers ("*": any). */
  allowedOrigins: readonly string[];
  allowedMethods: readonly string[];
  allowedHeaders: readonly string[];
  /** Whether cookies and Authorization may be sent cross-origin (the origin is then echoed, never "*"). */
  allowCredentials: boolean;
}

const ALL_METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"];
/** How long a browser may cache a preflight's answer, in seconds (Starlette's default). */
const PREFLIGHT_MAX_AGE = "600";

/** A list flag as vLLM takes it (a JSON array of strings), or comma-separated. */
export function parseListFlag(flag: string, value: string): string[] {
  const text = value.trim();
  if (!text.startsWith("["))
    return text
      .split(",")
      .map((item) => item.trim())
      .filter(Boolean);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`--${flag}: not a JSON list: ${value}`);
  }
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === "string"))
    throw new UsageError(`--${flag}: expected a JSON list of strings, got ${value}`);
  return parsed;
}

export class CorsPolicy {
  constructor(private readonly options: CorsOptions) {}

  /** A preflight (OPTIONS naming Origin and Access-Control-Request-Method): its answer; else null. */
  preflight(request: Request): Response | null {
    const origin = request.headers.get("origin");
    const method = request.headers.get("access-control-request-method");
    if (request.method !== "OPTIONS" || origin === null || method === null) return null;
    const { allowedMethods, allowedHeaders } = this.options;
    const headers = new Headers(this.originHeaders(origin));
    headers.set(
      "Access-Control-Allow-Methods",
      (allowedMethods.includes("*") ? ALL_METHODS : allowedMethods).join(", "),
    );
    const requested = request.headers.get("access-control-request-headers");
    if (allowedHeaders.includes("*")) {
      if (requested) headers.set("Access-Control-Allow-Headers", requested);
    } else headers.set("Access-Control-Allow-Headers", allowedHeaders.join(", "));
    headers.set("Access-Control-Max-Age", PREFLIGHT_MAX_AGE);
    const refused = this.refusal(origin, method, requested);
    if (refused) throw new ApiError(400, `CORS preflight refused: ${refused}`);
    return new Response(null, { status: 200, headers });
  }

  /** The answer with the headers that let the request's origin (if it named one) read it. */
  decorate(request: Request, response: Response): Response {
    const origin = request.headers.get("origin");
    if (origin === null || !this.originAllowed(origin)) return response;
    const headers = new Headers(response.headers);
    for (const [name, value] of Object.entries(this.originHeaders(origin))) headers.set(name, value);
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }

  private originAllowed(origin: string): boolean {
    return this.options.allowedOrigins.includes("*") || this.options.allowedOrigins.includes(origin);
  }

  /** Allow-Origin (and Credentials): "*" for any origin, unless credentials need the origin itself. */
  private originHeaders(origin: string): Record<string, string> {
    const { allowedOrigins, allowCredentials } = this.options;
    if (!this.originAllowed(origin)) return {};
    const echo = allowCredentials || !allowedOrigins.includes("*");
    return {
      "Access-Control-Allow-Origin": echo ? origin : "*",
      ...(echo ? { Vary: "Origin" } : {}),
      ...(allowCredentials ? { "Access-Control-Allow-Credentials": "true" } : {}),
    };
  }

  private refusal(origin: string, method: string, requestedHeaders: string | null): string | null {
    const { allowedMethods, allowedHeaders } = this.options;
    if (!this.originAllowed(origin)) return `origin ${quoteInput(origin)} is not allowed (--allowed-origins)`;
    if (!allowedMethods.includes("*") && !allowedMethods.includes(method.toUpperCase()))
      return `method ${quoteInput(method)} is not allowed (--allowed-methods)`;
    if (requestedHeaders && !allowedHeaders.includes("*")) {
      const allowed = new Set(allowedHeaders.map((name) => name.toLowerCase()));
      const missing = requestedHeaders
        .split(",")
        .map((name) => name.trim().toLowerCase())
        .filter((name) => name && !allowed.has(name));
      if (missing.length > 0) return `headers ${quoteInput(missing.join(", "))} are not allowed (--allowed-headers)`;
    }
    return null;
  }
}
