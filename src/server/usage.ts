// OpenAI's `usage`: prompt tokens once per prompt (its n samples share it), completion tokens
// summed over every choice, the EOS or stop token included, as vLLM counts them.
import type { ChoiceDelta } from "./generation.ts";

export class Usage {
  private completionTokens = 0;

  constructor(private readonly promptTokens: number) {}

  add({ delta }: ChoiceDelta): void {
    this.completionTokens += delta.tokenIds.length;
  }

  toJSON() {
    return {
      prompt_tokens: this.promptTokens,
      completion_tokens: this.completionTokens,
      total_tokens: this.promptTokens + this.completionTokens,
    };
  }
}

/** vLLM's ids: a prefix and a uuid's hex digits. */
export function newRequestId(prefix: "cmpl" | "chatcmpl"): string {
  return `${prefix}-${crypto.randomUUID().replaceAll("-", "")}`;
}

/** OpenAI's `created`: Unix seconds. */
export function unixSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
