// Reads a request's JSON body within a size limit. The declared length is checked before
// anything is read, and a chunked body is counted as it arrives, so an oversize upload costs
// at most the limit in memory.
import { quoteInput } from "../quote-input.ts";
import { ApiError } from "./errors.ts";

function tooLarge(limit: number): ApiError {
  return new ApiError(413, `the request body is larger than the limit of ${limit} bytes`);
}

/**
 * The OpenAI routes take JSON and say so: a body sent as text/plain (or as a form) is refused
 * rather than parsed anyway, so a web page cannot post to them without the preflight that a JSON
 * content type costs it. JSON is UTF-8, so the only charset allowed is that one.
 */
export function checkJsonContentType(request: Request): void {
  const header = request.headers.get("content-type") ?? "";
  const [mediaType, ...parameters] = header.split(";").map((part) => part.trim().toLowerCase());
  const charset = parameters.find((parameter) => parameter.startsWith("charset="))?.slice("charset=".length);
  if (mediaType === "application/json" && (charset === undefined || charset.replace(/"/g, "") === "utf-8")) return;
  throw new ApiError(
    415,
    `the request body must be sent as Content-Type: application/json, not ${header ? quoteInput(header) : "without one"}`,
  );
}

export async function readJsonBody(request: Request, limit: number): Promise<unknown> {
  const declared = Number(request.headers.get("content-length") ?? 0);
  if (declared > limit) throw tooLarge(limit);
  const parts: Uint8Array[] = [];
  let size = 0;
  if (request.body) {
    for await (const part of request.body) {
      size += part.byteLength;
      if (size > limit) throw tooLarge(limit);
      parts.push(part);
    }
  }
  const text = Buffer.concat(parts).toString("utf8");
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ApiError(400, `the request body is not valid JSON: ${(error as Error).message}`);
  }
}
