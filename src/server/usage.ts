// OpenAI's `usage`: prompt tokens once per prompt (its n samples share it), completion tokens
// summed over every choice, the EOS or stop token included, as vLLM counts them.
import type { ChoiceDelta } from "./generation.ts";

export class Usage {
  private generated = 0;

  constructor(readonly promptTokens: number) {}

  add({ delta }: ChoiceDelta): void {
    this.generated += delta.tokenIds.length;
  }

  get completionTokens(): number {
    return this.generated;
  }

  toJSON() {
    return {
      prompt_tokens: this.promptTokens,
      completion_tokens: this.completionTokens,
      total_tokens: this.promptTokens + this.completionTokens,
    };
  }
}

/** What an id says it names: a completion, a chat completion, a response, an Anthropic message. */
export type RequestIdPrefix = "cmpl" | "chatcmpl" | "resp" | "msg";

/** vLLM's ids: a prefix and a uuid's hex digits (Anthropic's and the Responses API's join with "_"). */
export function newRequestId(prefix: RequestIdPrefix): string {
  const separator = prefix === "resp" || prefix === "msg" ? "_" : "-";
  return `${prefix}${separator}${crypto.randomUUID().replaceAll("-", "")}`;
}

/** OpenAI's `created`: Unix seconds. */
export function unixSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
