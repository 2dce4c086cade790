// Errors in Anthropic's shape, {"type": "error", "error": {"type", "message"}}, which the Messages
// API's clients read; the HTTP status is the same as the OpenAI routes give.
import type { ApiError } from "../errors.ts";

/** Anthropic's error types, by status. */
const TYPE_OF_STATUS: Record<number, string> = {
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  408: "timeout_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  503: "overloaded_error",
};

export function anthropicError(error: ApiError): { type: "error"; error: { type: string; message: string } } {
  const type = TYPE_OF_STATUS[error.status] ?? (error.status < 500 ? "invalid_request_error" : "api_error");
  return { type: "error", error: { type, message: error.message } };
}

export function anthropicErrorResponse(error: ApiError, headers?: Record<string, string>): Response {
  return Response.json(anthropicError(error), { status: error.status, headers });
}
