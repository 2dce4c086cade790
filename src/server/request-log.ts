// vLLM's request log: one line per HTTP request once it ends, with what was asked and what came
// out (tokens, finish reasons, status, time) and, only with --log-prompts, the prompts themselves:
// prompts are the users' data, so by default no log holds their text.
import { logger, withFields } from "../logger.ts";
import { quoteInput } from "../quote-input.ts";

/** How much of each prompt --log-prompts keeps (characters, or token ids): a log line stays a line. */
export const LOGGED_PROMPT_LENGTH = 500;

/** A prompt as the client gave it (text, or token ids); chat's is the rendered conversation. */
export type PromptAsGiven = string | readonly number[];

export interface RequestRecord {
  requestId: string;
  model: string;
  promptTokens: number;
  outputTokens: number;
  /** Distinct finish reasons of its sequences, comma-separated; "none" if none finished. */
  finishReason: string;
  status: number;
  seconds: number;
  /** Each prompt, when --log-prompts asks for them; null otherwise. */
  prompts: readonly PromptAsGiven[] | null;
}

function cutPrompt(prompt: PromptAsGiven): string | number[] {
  return typeof prompt === "string" ? quoteInput(prompt, LOGGED_PROMPT_LENGTH) : prompt.slice(0, LOGGED_PROMPT_LENGTH);
}

export function logRequest(record: RequestRecord): void {
  const { requestId, model, promptTokens, outputTokens, finishReason, status, seconds } = record;
  const prompts = record.prompts?.map(cutPrompt) ?? null;
  // JSON quoting keeps a prompt's newlines and quotes from breaking the line.
  const promptsText =
    prompts === null
      ? ""
      : `; prompt${prompts.length === 1 ? "" : "s"} ${prompts.map((p) => JSON.stringify(p)).join(", ")}`;
  logger.info(
    withFields(
      `request ${requestId}: model ${model}, ${promptTokens} prompt + ${outputTokens} output tokens, finished ${finishReason}, status ${status}, ${seconds.toFixed(3)} s${promptsText}`,
      {
        request_id: requestId,
        model,
        prompt_tokens: promptTokens,
        output_tokens: outputTokens,
        finish_reason: finishReason,
        status,
        seconds,
        ...(prompts === null ? {} : { prompts }),
      },
    ),
  );
}
