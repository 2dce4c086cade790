// Reads a request's JSON body within a size limit. The declared length is checked before
// anything is read, and a chunked body is counted as it arrives, so an oversize upload costs
// at most the limit in memory.
import { ApiError } from "./errors.ts";

function tooLarge(limit: number): ApiError {
  return new ApiError(413, `the request body is larger than the limit of ${limit} bytes`);
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
