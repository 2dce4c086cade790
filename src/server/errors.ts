// Errors a request can meet, as values carrying their HTTP status, rendered in OpenAI's shape
// {"error": {"message", "type", "param", "code"}} so that OpenAI clients surface the message.
import { z } from "zod";
import { SamplingParamsError } from "../engine/sampling-params.ts";
import { ChatTemplateError } from "../model/chat-template.ts";
import { quoteInput } from "../quote-input.ts";

/**
 * How long a message may be: messages of libraries (zod, JSON.parse, Jinja, xgrammar) may quote a
 * client's input at any length.
 */
const MAX_MESSAGE_LENGTH = 2000;

/** OpenAI's error types, by status. */
const TYPE_OF_STATUS: Record<number, string> = {
  400: "BadRequestError",
  401: "AuthenticationError",
  404: "NotFoundError",
  405: "MethodNotAllowedError",
  408: "RequestTimeoutError",
  413: "RequestTooLargeError",
  415: "UnsupportedMediaTypeError",
  421: "MisdirectedRequestError",
  500: "InternalServerError",
  503: "ServiceUnavailableError",
};

export class ApiError extends Error {
  readonly param: string | null;

  constructor(
    readonly status: number,
    message: string,
    param: string | null = null,
  ) {
    super(quoteInput(message, MAX_MESSAGE_LENGTH));
    this.name = "ApiError";
    // A field's path may hold a client's keys.
    this.param = param === null ? null : quoteInput(param);
  }

  toJSON() {
    return {
      error: {
        message: this.message,
        type: TYPE_OF_STATUS[this.status] ?? "Error",
        param: this.param,
        code: this.status,
      },
    };
  }
}

/** SamplingParams names its fields in camelCase; the client wrote them in snake_case. */
function snakeCase(field: string): string {
  return field.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/**
 * Any failure while serving a request, as an ApiError: the user's own mistakes (schema, sampling
 * parameters, a conversation the template refuses) are 400s; anything else is the server's 500.
 */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof z.ZodError) {
    const issue = error.issues[0]!;
    const param = issue.path.map(String).join(".") || null;
    return new ApiError(400, param ? `${param}: ${issue.message}` : issue.message, param);
  }
  if (error instanceof SamplingParamsError) {
    const param = snakeCase(error.field);
    return new ApiError(400, `${param} ${error.problem}`, param);
  }
  if (error instanceof ChatTemplateError) return new ApiError(400, error.message, "messages");
  return new ApiError(500, `internal server error: ${error instanceof Error ? error.message : String(error)}`);
}

export function errorResponse(error: ApiError, headers?: Record<string, string>): Response {
  return Response.json(error.toJSON(), { status: error.status, headers });
}
