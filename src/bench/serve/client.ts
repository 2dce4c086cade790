// The client side of `bench serve`: seeded random prompts, Poisson arrivals, and one streaming
// /v1/completions request timed token by token.
import { RequestGenerator } from "../../engine/random.ts";

/** A seeded generator (the engine's own), so that two runs send the same prompts at the same gaps. */
export function seededRandom(seed: number): () => number {
  const generator = new RequestGenerator(seed);
  return () => generator.nextFloat();
}

/** Seconds to the next arrival of a Poisson process of `rate` requests/s; 0 for an infinite rate. */
export function arrivalGap(rate: number, random: () => number): number {
  return Number.isFinite(rate) ? -Math.log(1 - random()) / rate : 0;
}

const WORDS = (
  "the of and to in is was for on that with as by at from his her an which are this be has had it or were not " +
  "time year people way day man thing woman life child world school state family student group country problem " +
  "hand part place case week company system program question work government number night point home water room " +
  "mother area money story fact month lot right study book eye job word business issue side kind head house service"
).split(" ");

/**
 * Token ids the server's tokenizer produces, from text of common words: random prompts are drawn
 * from them so that every id is in the model's vocabulary, whatever the model.
 */
export async function fetchTokenPool(url: string, model: string): Promise<number[]> {
  const response = await fetch(`${url}/tokenize`, {
    method: "POST",
    body: JSON.stringify({ model, prompt: WORDS.join(" ") }),
  });
  if (!response.ok) throw new Error(`${url}/tokenize answered ${response.status}: ${await response.text()}`);
  const { tokens } = (await response.json()) as { tokens: number[] };
  const pool = [...new Set(tokens)];
  if (pool.length === 0) throw new Error(`${url}/tokenize returned no tokens`);
  return pool;
}

export function randomPrompt(pool: readonly number[], length: number, random: () => number): number[] {
  return Array.from({ length }, () => pool[Math.floor(random() * pool.length)]!);
}

export interface RequestOutcome {
  success: boolean;
  error: string;
  promptLen: number;
  outputLen: number;
  ttftMs: number;
  /** Gaps between the chunks after the first that carried text. */
  itlMs: number[];
  e2elMs: number;
  /** performance.now() when the request was sent. */
  startedMs: number;
}

/** One streamed completion with ignore_eos, so that it generates exactly `maxTokens` tokens. */
export async function streamCompletion(
  url: string,
  model: string,
  prompt: number[],
  maxTokens: number,
): Promise<RequestOutcome> {
  const start = performance.now();
  const outcome: RequestOutcome = {
    success: false,
    error: "",
    promptLen: prompt.length,
    outputLen: 0,
    ttftMs: 0,
    itlMs: [],
    e2elMs: 0,
    startedMs: start,
  };
  let last = start;
  try {
    const response = await fetch(`${url}/v1/completions`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        model,
        prompt,
        max_tokens: maxTokens,
        temperature: 0,
        ignore_eos: true,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
    const decoder = new TextDecoder();
    let buffer = "";
    let firstToken = true;
    for await (const bytes of response.body) {
      buffer += decoder.decode(bytes, { stream: true });
      for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
        const event = buffer.slice(0, end).replace(/^data: /, "");
        buffer = buffer.slice(end + 2);
        if (event === "[DONE]") continue;
        const chunk = JSON.parse(event) as {
          error?: { message: string };
          choices?: { text: string }[];
          usage?: { completion_tokens: number } | null;
        };
        if (chunk.error) throw new Error(chunk.error.message);
        const now = performance.now();
        if (chunk.choices?.some((choice) => choice.text !== "")) {
          if (firstToken) outcome.ttftMs = now - start;
          else outcome.itlMs.push(now - last);
          firstToken = false;
          last = now;
        }
        if (chunk.usage) outcome.outputLen = chunk.usage.completion_tokens;
      }
    }
    outcome.e2elMs = performance.now() - start;
    if (firstToken) throw new Error("the stream carried no text");
    outcome.success = true;
  } catch (error) {
    outcome.error = error instanceof Error ? error.message : String(error);
  }
  return outcome;
}
