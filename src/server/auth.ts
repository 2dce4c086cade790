// The API key check of the /v1 routes (as vLLM: health, metrics and tokenize stay open). Keys are
// compared through their hashes in constant time, so response timing leaks nothing about a key.
import { createHash, timingSafeEqual } from "node:crypto";
import { ApiError } from "./errors.ts";

const digest = (text: string) => createHash("sha256").update(text).digest();

export function checkApiKey(request: Request, apiKey: string): void {
  const header = request.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(.+)$/i.exec(header);
  if (!match) throw new ApiError(401, "missing API key: send it as `Authorization: Bearer <key>`");
  if (!timingSafeEqual(digest(match[1]!.trim()), digest(apiKey))) throw new ApiError(401, "invalid API key");
}
