// Reads a request's JSON body within a size limit and a deadline. The declared length is checked
// before anything is read, and a chunked body is counted as it arrives, so an oversize upload costs
// at most the limit in memory; a body that stops short of its length, or trickles in, costs its
// connection at most the deadline.
import { quoteInput } from "../quote-input.ts";
import { ApiError } from "./errors.ts";

/** The body was left unread: its connection cannot carry another request and must be closed. */
export class UnreadBodyError extends ApiError {}

export interface BodyLimits {
  maxBytes: number;
  timeoutMs: number;
}

function tooLarge(limit: number): ApiError {
  return new UnreadBodyError(413, `the request body is larger than the limit of ${limit} bytes`);
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
  if (
    mediaType === "application/json" &&
    (charset === undefined || ["utf-8", "utf8"].includes(charset.replace(/"/g, "")))
  )
    return;
  throw new ApiError(
    415,
    `the request body must be sent as Content-Type: application/json, not ${header ? quoteInput(header) : "without one"}`,
  );
}

async function readWithin(body: ReadableStream<Uint8Array>, { maxBytes, timeoutMs }: BodyLimits) {
  const reader = body.getReader();
  let timer: Timer | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const seconds = timeoutMs / 1000;
      reject(new UnreadBodyError(408, `the request body did not arrive in full within ${seconds} s`));
    }, timeoutMs);
  });
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { value, done } = await Promise.race([reader.read(), expired]);
      if (done) return parts;
      size += value.byteLength;
      if (size > maxBytes) throw tooLarge(maxBytes);
      parts.push(value);
    }
  } catch (error) {
    void reader.cancel().catch(() => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

export async function readJsonBody(request: Request, limits: BodyLimits): Promise<unknown> {
  const declared = Number(request.headers.get("content-length") ?? 0);
  if (declared > limits.maxBytes) throw tooLarge(limits.maxBytes);
  const parts = request.body ? await readWithin(request.body, limits) : [];
  const text = Buffer.concat(parts).toString("utf8");
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ApiError(400, `the request body is not valid JSON: ${(error as Error).message}`);
  }
}
