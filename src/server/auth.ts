// The API key check of the /v1 routes (as vLLM: health, metrics and tokenize stay open). Keys are
// compared through their hashes in constant time, so response timing leaks nothing about a key.
import { createHash, timingSafeEqual } from "node:crypto";
import { ApiError } from "./errors.ts";

const digest = (text: string) => createHash("sha256").update(text).digest();

/** The key a request sends: OpenAI's clients as a bearer token, Anthropic's in `x-api-key`. */
function sentKey(request: Request): string | null {
  const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.get("authorization") ?? "");
  if (bearer) return bearer[1]!.trim();
  return request.headers.get("x-api-key")?.trim() || null;
}

export function checkApiKey(request: Request, apiKey: string): void {
  const key = sentKey(request);
  if (key === null)
    throw new ApiError(401, "missing API key: send it as `Authorization: Bearer <key>` or in an `x-api-key` header");
  if (!timingSafeEqual(digest(key), digest(apiKey))) throw new ApiError(401, "invalid API key");
}
