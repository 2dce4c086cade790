// How a request wants its tokens chosen and when it stops: vLLM's SamplingParams, validated once
// when the request arrives so the sampler can trust every field.

import type { GenerationConfig } from "../model/generation-config.ts";
import { quoteInput } from "../quote-input.ts";
import {
  constraintKind,
  type StructuredOutputs,
  StructuredOutputsError,
} from "./structured-output/structured-outputs.ts";

/** Temperatures below this sample greedily, as vLLM's _SAMPLING_EPS. */
export const GREEDY_TEMPERATURE = 1e-5;
/** The most top logprobs a request may ask for per token (vLLM's default max_logprobs). */
export const MAX_LOGPROBS = 20;
/** OpenAI's range for logit_bias values; ±100 is enough to force or ban a token. */
export const MAX_LOGIT_BIAS = 100;
/**
 * The device takes top_k as an int32, where a larger k would wrap around (2^32 + 5 becoming 5). No
 * vocabulary comes near it, and any k at least the vocabulary's size keeps every token, so a larger
 * k is stored as this one without changing what it means.
 */
export const MAX_TOP_K = 2 ** 31 - 1;
/** The device takes temperatures as 32-bit floats: past the largest one a temperature becomes inf. */
export const MAX_TEMPERATURE = 3.4028234663852886e38;

export interface SamplingParamsInit {
  n: number;
  temperature: number;
  topP: number;
  /** 0 or -1 turns top-k off (stored as 0); k >= 1 keeps the k most likely tokens. */
  topK: number;
  minP: number;
  repetitionPenalty: number;
  presencePenalty: number;
  frequencyPenalty: number;
  /**
   * Token id → value added to its logit, in [-100, 100]. A Map keeps any key a client sent, where
   * an object would swallow "__proto__".
   */
  logitBias: Readonly<Record<number, number>> | ReadonlyMap<string, number>;
  seed: number | null;
  maxTokens: number;
  minTokens: number;
  stopTokenIds: readonly number[];
  stop: string | readonly string[];
  ignoreEos: boolean;
  /** null: none; 0: only the chosen token's logprob; k: also the k most likely tokens'. */
  logprobs: number | null;
  skipSpecialTokens: boolean;
  includeStopStrInOutput: boolean;
  /** A grammar the output must follow (JSON schema, regex, choice, EBNF), or null. */
  structuredOutputs: StructuredOutputs | null;
}

/** The generation_config.json fields that fill in a request's unset sampling parameters. */
export type SamplingDefaults = Pick<GenerationConfig, "temperature" | "topP" | "topK" | "minP" | "repetitionPenalty">;

export class SamplingParamsError extends Error {
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field} ${problem}`);
    this.name = "SamplingParamsError";
  }
}

export class SamplingParams {
  readonly n: number;
  readonly temperature: number;
  readonly topP: number;
  readonly topK: number;
  readonly minP: number;
  readonly repetitionPenalty: number;
  readonly presencePenalty: number;
  readonly frequencyPenalty: number;
  readonly logitBias: ReadonlyMap<number, number>;
  readonly seed: number | null;
  readonly maxTokens: number;
  readonly minTokens: number;
  readonly stopTokenIds: readonly number[];
  readonly stop: readonly string[];
  readonly ignoreEos: boolean;
  readonly logprobs: number | null;
  readonly skipSpecialTokens: boolean;
  readonly includeStopStrInOutput: boolean;
  readonly structuredOutputs: StructuredOutputs | null;
  /** What the caller set, so withDefaults fills only the rest, as vLLM does. */
  readonly explicit: Readonly<Partial<SamplingParamsInit>>;

  constructor(init: Partial<SamplingParamsInit> = {}) {
    this.explicit = Object.fromEntries(Object.entries(init).filter(([, value]) => value !== undefined));
    this.n = integerAtLeast("n", init.n ?? 1, 1);
    this.temperature = finite("temperature", init.temperature ?? 1);
    if (this.temperature < 0) throw new SamplingParamsError("temperature", `must be >= 0, got ${this.temperature}`);
    if (this.temperature > MAX_TEMPERATURE) {
      throw new SamplingParamsError(
        "temperature",
        `must be at most ${MAX_TEMPERATURE} (the largest 32-bit float), got ${this.temperature}`,
      );
    }
    this.topP = finite("topP", init.topP ?? 1);
    if (!(this.topP > 0 && this.topP <= 1))
      throw new SamplingParamsError("topP", `must be in (0, 1], got ${this.topP}`);
    const topK = init.topK ?? 0;
    if (!Number.isSafeInteger(topK) || topK < -1) {
      throw new SamplingParamsError("topK", `must be 0 or -1 (off) or a positive integer, got ${String(topK)}`);
    }
    this.topK = Math.min(Math.max(topK, 0), MAX_TOP_K);
    this.minP = inRange("minP", init.minP ?? 0, 0, 1);
    this.repetitionPenalty = finite("repetitionPenalty", init.repetitionPenalty ?? 1);
    if (this.repetitionPenalty <= 0) {
      throw new SamplingParamsError("repetitionPenalty", `must be > 0, got ${this.repetitionPenalty}`);
    }
    this.presencePenalty = inRange("presencePenalty", init.presencePenalty ?? 0, -2, 2);
    this.frequencyPenalty = inRange("frequencyPenalty", init.frequencyPenalty ?? 0, -2, 2);
    this.logitBias = parseLogitBias(init.logitBias ?? {});
    this.seed = init.seed ?? null;
    if (this.seed !== null && !Number.isSafeInteger(this.seed)) {
      throw new SamplingParamsError("seed", `must be an integer, got ${this.seed}`);
    }
    this.maxTokens = integerAtLeast("maxTokens", init.maxTokens ?? 16, 1);
    this.minTokens = integerAtLeast("minTokens", init.minTokens ?? 0, 0);
    if (this.minTokens > this.maxTokens) {
      throw new SamplingParamsError("minTokens", `must be <= maxTokens (${this.maxTokens}), got ${this.minTokens}`);
    }
    this.stopTokenIds = [...(init.stopTokenIds ?? [])];
    this.stopTokenIds.forEach((id, i) => {
      integerAtLeast(`stopTokenIds[${i}]`, id, 0);
    });
    this.stop = typeof init.stop === "string" ? [init.stop] : [...(init.stop ?? [])];
    if (this.stop.some((text) => text.length === 0))
      throw new SamplingParamsError("stop", "cannot contain an empty string");
    this.ignoreEos = init.ignoreEos ?? false;
    this.logprobs = init.logprobs ?? null;
    if (this.logprobs !== null) inRange("logprobs", integerAtLeast("logprobs", this.logprobs, 0), 0, MAX_LOGPROBS);
    this.skipSpecialTokens = init.skipSpecialTokens ?? true;
    this.includeStopStrInOutput = init.includeStopStrInOutput ?? false;
    this.structuredOutputs = init.structuredOutputs ?? null;
    if (this.structuredOutputs !== null) {
      try {
        constraintKind(this.structuredOutputs);
      } catch (error) {
        if (error instanceof StructuredOutputsError) throw new SamplingParamsError("structuredOutputs", error.message);
        throw error;
      }
    }
  }

  get isGreedy(): boolean {
    return this.temperature < GREEDY_TEMPERATURE;
  }

  /** Every resolved field as plain data: to derive a variant, or to cross a thread boundary. */
  toInit(): SamplingParamsInit {
    return {
      n: this.n,
      temperature: this.temperature,
      topP: this.topP,
      topK: this.topK,
      minP: this.minP,
      repetitionPenalty: this.repetitionPenalty,
      presencePenalty: this.presencePenalty,
      frequencyPenalty: this.frequencyPenalty,
      logitBias: Object.fromEntries(this.logitBias),
      seed: this.seed,
      maxTokens: this.maxTokens,
      minTokens: this.minTokens,
      stopTokenIds: this.stopTokenIds,
      stop: this.stop,
      ignoreEos: this.ignoreEos,
      logprobs: this.logprobs,
      skipSpecialTokens: this.skipSpecialTokens,
      includeStopStrInOutput: this.includeStopStrInOutput,
      structuredOutputs: this.structuredOutputs,
    };
  }

  /** Token ids the request names must exist in the model's vocabulary; checked on admission. */
  validateForVocab(vocabSize: number): void {
    const check = (field: string, ids: Iterable<number>) => {
      for (const id of ids) {
        if (id >= vocabSize)
          throw new SamplingParamsError(field, `token id ${id} is outside the vocabulary (size ${vocabSize})`);
      }
    };
    check("logitBias", this.logitBias.keys());
    check("stopTokenIds", this.stopTokenIds);
    check("structuredOutputs.startAfterTokenIds", this.structuredOutputs?.startAfterTokenIds ?? []);
  }
}

/**
 * `params` with the model's generation_config defaults for the fields the request left unset.
 * A bad default is reported as the model's, since the user cannot fix it in the request.
 */
export function withDefaults(params: SamplingParams, defaults: SamplingDefaults): SamplingParams {
  const filled: Partial<SamplingParamsInit> = {};
  for (const field of ["temperature", "topP", "topK", "minP", "repetitionPenalty"] as const) {
    if (params.explicit[field] === undefined && defaults[field] !== undefined) filled[field] = defaults[field];
  }
  try {
    return new SamplingParams({ ...params.explicit, ...filled });
  } catch (error) {
    if (error instanceof SamplingParamsError && error.field in filled) {
      throw new SamplingParamsError(error.field, `${error.problem} (default from generation_config.json)`);
    }
    throw error;
  }
}

function finite(field: string, value: number): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new SamplingParamsError(field, `must be a finite number, got ${String(value)}`);
  }
  return value;
}

function inRange(field: string, value: number, min: number, max: number): number {
  if (finite(field, value) < min || value > max) {
    throw new SamplingParamsError(field, `must be in [${min}, ${max}], got ${value}`);
  }
  return value;
}

function integerAtLeast(field: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value)) throw new SamplingParamsError(field, `must be an integer, got ${String(value)}`);
  if (value < min) throw new SamplingParamsError(field, `must be >= ${min}, got ${value}`);
  return value;
}

/** JSON object keys arrive as strings ("50256"); they must still be token ids. */
function parseLogitBias(bias: SamplingParamsInit["logitBias"]): Map<number, number> {
  const parsed = new Map<number, number>();
  const entries = bias instanceof Map ? bias.entries() : Object.entries(bias);
  for (const [key, value] of entries) {
    const id = Number(key);
    if (!/^\d+$/.test(key) || !Number.isSafeInteger(id)) {
      throw new SamplingParamsError("logitBias", `keys must be token ids, got ${JSON.stringify(quoteInput(key))}`);
    }
    parsed.set(id, inRange(`logitBias[${id}]`, value, -MAX_LOGIT_BIAS, MAX_LOGIT_BIAS));
  }
  return parsed;
}
