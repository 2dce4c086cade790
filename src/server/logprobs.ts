// The engine's per-token logprobs in OpenAI's two response shapes: the legacy completions one
// (parallel arrays plus a dict of top tokens) and the chat one (a record per token, with bytes).
import type { TokenLogprobs } from "../engine/sampler.ts";
import type { ModelTokenizer } from "../model/tokenizer.ts";

/** JSON has no -Infinity (a token the request banned); vLLM reports it as -9999. */
const clamp = (logprob: number) => Math.max(logprob, -9999);

function tokenText(tokenizer: ModelTokenizer, tokenId: number): string {
  return tokenizer.decode([tokenId]);
}

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

/** One choice's logprobs across stream chunks: text offsets continue from chunk to chunk. */
export class CompletionLogprobsWriter {
  private offset = 0;

  constructor(private readonly tokenizer: ModelTokenizer) {}

  write(tokenIds: readonly number[], logprobs: readonly TokenLogprobs[]): CompletionLogprobs {
    const result: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
    logprobs.forEach((entry, i) => {
      const token = tokenText(this.tokenizer, tokenIds[i]!);
      const top: Record<string, number> = {};
      for (const candidate of entry.top) top[tokenText(this.tokenizer, candidate.tokenId)] = clamp(candidate.logprob);
      // As vLLM: the dict always holds the sampled token, even when outside the top k.
      top[token] ??= clamp(entry.logprob);
      result.tokens.push(token);
      result.token_logprobs.push(clamp(entry.logprob));
      result.top_logprobs.push(top);
      result.text_offset.push(this.offset);
      this.offset += token.length;
    });
    return result;
  }
}

interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

export interface ChatLogprobs {
  content: (ChatTokenLogprob & { top_logprobs: ChatTokenLogprob[] })[];
}

export function chatLogprobs(
  tokenizer: ModelTokenizer,
  tokenIds: readonly number[],
  logprobs: readonly TokenLogprobs[],
): ChatLogprobs {
  const entry = (tokenId: number, logprob: number): ChatTokenLogprob => {
    const token = tokenText(tokenizer, tokenId);
    return { token, logprob: clamp(logprob), bytes: [...new TextEncoder().encode(token)] };
  };
  return {
    content: logprobs.map((lp, i) => ({
      ...entry(tokenIds[i]!, lp.logprob),
      top_logprobs: lp.top.map((candidate) => entry(candidate.tokenId, candidate.logprob)),
    })),
  };
}
