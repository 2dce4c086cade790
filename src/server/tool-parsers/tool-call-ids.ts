// Tool-call ids as vLLM makes them.

/** OpenAI's form: a prefix and a uuid's hex digits. */
export function openAiToolCallId(): string {
  return `chatcmpl-tool-${crypto.randomUUID().replaceAll("-", "")}`;
}

const ALPHANUMERIC = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/** Mistral's chat template accepts only 9 alphanumeric characters as a call id. */
export function mistralToolCallId(): string {
  // A byte modulo 62 favours a few characters slightly; an id needs uniqueness, not uniformity.
  return Array.from(crypto.getRandomValues(new Uint8Array(9)), (byte) => ALPHANUMERIC[byte % 62]).join("");
}
