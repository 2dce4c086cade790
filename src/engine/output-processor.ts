// The output side of the engine (vLLM's OutputProcessor): token ids become text incrementally,
// and stop strings are found here, where the text is. A stop string finishes the request, and
// the caller then aborts it in the core so its KV blocks are freed at once.
import { IncrementalDetokenizer, type ModelTokenizer } from "../model/tokenizer.ts";
import type { StepOutput } from "./engine-core.ts";
import type { FinishReason } from "./request.ts";
import type { TokenLogprobs } from "./sampler.ts";
import type { SamplingParams } from "./sampling-params.ts";

export interface CompletionOutput {
  /** Which of the request's n samples. */
  index: number;
  text: string;
  tokenIds: number[];
  finishReason: FinishReason | null;
  /** The stop string or stop token id that ended it, if one did. */
  stopReason: string | number | null;
  logprobs: TokenLogprobs[] | null;
}

/** What a step changed for one sequence. */
export interface CompletionDelta {
  requestId: string;
  /** New text since the previous delta (stop strings already cut). */
  text: string;
  tokenIds: number[];
  logprobs: TokenLogprobs[] | null;
  finished: boolean;
  /** True when a stop string ended it here: the core still holds it and must abort it. */
  stoppedByString: boolean;
  output: CompletionOutput;
  error: string | null;
  /** Seconds the sequence waited in the engine's queue before it was first scheduled. */
  queueSeconds: number | null;
}

interface SequenceState {
  output: CompletionOutput;
  params: SamplingParams;
  detokenizer: IncrementalDetokenizer;
  /** Text held back because it may be the start of a stop string. */
  pending: string;
}

export class OutputProcessor {
  private readonly sequences = new Map<string, SequenceState>();

  constructor(private readonly tokenizer: ModelTokenizer) {}

  add(requestId: string, index: number, promptTokenIds: readonly number[], params: SamplingParams): void {
    this.sequences.set(requestId, {
      output: {
        index,
        text: "",
        tokenIds: [],
        finishReason: null,
        stopReason: null,
        logprobs: params.logprobs === null ? null : [],
      },
      params,
      detokenizer: new IncrementalDetokenizer(this.tokenizer, {
        skipSpecialTokens: params.skipSpecialTokens,
        promptIds: promptTokenIds,
      }),
      pending: "",
    });
  }

  /** Drops a sequence the caller gave up on (client gone); its output is never completed. */
  remove(requestId: string): void {
    this.sequences.delete(requestId);
  }

  process(step: StepOutput): CompletionDelta | null {
    const state = this.sequences.get(step.requestId);
    if (!state) return null;
    const { output, params } = state;
    output.tokenIds.push(...step.newTokenIds);
    if (output.logprobs && step.logprobs) output.logprobs.push(...step.logprobs);
    // The core finishes with "stop" only on an EOS or stop token, which ends the text without
    // being part of it.
    const textTokens = step.finishReason === "stop" ? step.newTokenIds.slice(0, -1) : step.newTokenIds;
    let text = state.pending + state.detokenizer.push(textTokens);
    if (step.finished) text += state.detokenizer.flush();
    state.pending = "";
    let stoppedByString = false;
    const hit = findStopString(text, params.stop);
    if (hit) {
      text = text.slice(0, params.includeStopStrInOutput ? hit.end : hit.start);
      output.finishReason = "stop";
      output.stopReason = hit.stop;
      stoppedByString = true;
    } else if (!step.finished && params.stop.length > 0) {
      // Hold back a tail that could still grow into a stop string, so it is never streamed.
      const keep = heldBackLength(text, params.stop);
      state.pending = text.slice(text.length - keep);
      text = text.slice(0, text.length - keep);
    }
    output.text += text;
    const finished = step.finished || stoppedByString;
    if (step.finished && !stoppedByString) {
      output.finishReason = step.finishReason;
      output.stopReason = step.stopReason;
    }
    if (finished) this.sequences.delete(step.requestId);
    return {
      requestId: step.requestId,
      text,
      tokenIds: step.newTokenIds,
      logprobs: step.logprobs,
      finished,
      stoppedByString,
      output,
      error: step.error,
      queueSeconds: step.queueSeconds,
    };
  }
}

/** The earliest stop string in `text`. Text that might begin one is held back from the previous
 * step and prepended, so a match never straddles text already emitted. */
function findStopString(text: string, stops: readonly string[]) {
  let best: { start: number; end: number; stop: string } | null = null;
  for (const stop of stops) {
    const start = text.indexOf(stop);
    if (start >= 0 && (!best || start < best.start)) best = { start, end: start + stop.length, stop };
  }
  return best;
}

/** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
function heldBackLength(text: string, stops: readonly string[]): number {
  let keep = 0;
  for (const stop of stops) {
    for (let n = Math.min(stop.length - 1, text.length); n > keep; n--) {
      if (text.endsWith(stop.slice(0, n))) {
        keep = n;
        break;
      }
    }
  }
  return keep;
}
