// SamplingParams: vLLM's defaults, validation that names the field at fault, and generation_config
// defaults filling only what the request left unset.

import { describe, expect, test } from "bun:test";
import {
  MAX_TOP_K,
  SamplingParams,
  SamplingParamsError,
  type SamplingParamsInit,
  withDefaults,
} from "../../src/engine/sampling-params.ts";

function problemWith(init: Partial<SamplingParamsInit>): { field: string; message: string } {
  try {
    new SamplingParams(init);
  } catch (error) {
    expect(error).toBeInstanceOf(SamplingParamsError);
    return { field: (error as SamplingParamsError).field, message: (error as Error).message };
  }
  throw new Error(`expected ${JSON.stringify(init)} to be rejected`);
}

describe("defaults", () => {
  test("match vLLM's", () => {
    const params = new SamplingParams();
    expect(params).toMatchObject({
      n: 1,
      temperature: 1,
      topP: 1,
      topK: 0,
      minP: 0,
      repetitionPenalty: 1,
      presencePenalty: 0,
      frequencyPenalty: 0,
      seed: null,
      maxTokens: 16,
      minTokens: 0,
      stopTokenIds: [],
      stop: [],
      ignoreEos: false,
      logprobs: null,
      skipSpecialTokens: true,
      includeStopStrInOutput: false,
    });
    expect(params.logitBias.size).toBe(0);
    expect(params.isGreedy).toBe(false);
  });

  test("temperature 0 is greedy", () => {
    expect(new SamplingParams({ temperature: 0 }).isGreedy).toBe(true);
  });

  test("topK -1 and 0 both mean off, stored as 0", () => {
    expect(new SamplingParams({ topK: -1 }).topK).toBe(0);
    expect(new SamplingParams({ topK: 0 }).topK).toBe(0);
    expect(new SamplingParams({ topK: 40 }).topK).toBe(40);
  });

  test("a topK past the device's int32 keeps every token, as it means, instead of wrapping around", () => {
    expect(new SamplingParams({ topK: 2 ** 31 }).topK).toBe(MAX_TOP_K);
    expect(new SamplingParams({ topK: 2 ** 32 + 5 }).topK).toBe(MAX_TOP_K);
    expect(MAX_TOP_K).toBe(2 ** 31 - 1);
  });

  test("a single stop string becomes a list", () => {
    expect(new SamplingParams({ stop: "###" }).stop).toEqual(["###"]);
    expect(new SamplingParams({ stop: ["a", "b"] }).stop).toEqual(["a", "b"]);
  });

  test("logit bias keys may arrive as JSON strings", () => {
    const params = new SamplingParams({ logitBias: JSON.parse('{"50256": -100, "7": 2.5}') });
    expect([...params.logitBias]).toEqual([
      [7, 2.5],
      [50256, -100],
    ]);
  });
});

describe("validation names the field and the accepted range", () => {
  const cases: [Partial<SamplingParamsInit>, string, RegExp][] = [
    [{ n: 0 }, "n", /n must be >= 1, got 0/],
    [{ n: 1.5 }, "n", /n must be an integer/],
    [{ temperature: -0.1 }, "temperature", /temperature must be >= 0, got -0.1/],
    [{ temperature: Number.NaN }, "temperature", /temperature must be a finite number/],
    [{ temperature: 1e39 }, "temperature", /temperature must be at most 3\.4028234663852886e\+38 .*got 1e\+39/],
    [{ topP: 0 }, "topP", /topP must be in \(0, 1\], got 0/],
    [{ topP: 1.01 }, "topP", /topP must be in \(0, 1\]/],
    [{ topK: -2 }, "topK", /topK must be 0 or -1 \(off\) or a positive integer, got -2/],
    [{ topK: 2.5 }, "topK", /topK must be 0 or -1/],
    [{ minP: -0.01 }, "minP", /minP must be in \[0, 1\]/],
    [{ minP: 1.5 }, "minP", /minP must be in \[0, 1\], got 1.5/],
    [{ repetitionPenalty: 0 }, "repetitionPenalty", /repetitionPenalty must be > 0, got 0/],
    [{ presencePenalty: 2.5 }, "presencePenalty", /presencePenalty must be in \[-2, 2\], got 2.5/],
    [{ frequencyPenalty: -3 }, "frequencyPenalty", /frequencyPenalty must be in \[-2, 2\], got -3/],
    [{ logitBias: { 5: 101 } }, "logitBias[5]", /logitBias\[5\] must be in \[-100, 100\], got 101/],
    [{ logitBias: JSON.parse('{"x": 1}') }, "logitBias", /logitBias keys must be token ids, got "x"/],
    [{ logitBias: JSON.parse('{"__proto__": 1}') }, "logitBias", /logitBias keys must be token ids, got "__proto__"/],
    [{ logitBias: new Map([["__proto__", 1]]) }, "logitBias", /logitBias keys must be token ids, got "__proto__"/],
    [{ seed: 0.5 }, "seed", /seed must be an integer/],
    [{ maxTokens: 0 }, "maxTokens", /maxTokens must be >= 1, got 0/],
    [{ minTokens: -1 }, "minTokens", /minTokens must be >= 0/],
    [{ minTokens: 20, maxTokens: 10 }, "minTokens", /minTokens must be <= maxTokens \(10\), got 20/],
    [{ stopTokenIds: [3, -1] }, "stopTokenIds[1]", /stopTokenIds\[1\] must be >= 0, got -1/],
    [{ stop: ["ok", ""] }, "stop", /stop cannot contain an empty string/],
    [{ logprobs: 21 }, "logprobs", /logprobs must be in \[0, 20\], got 21/],
    [{ logprobs: -1 }, "logprobs", /logprobs must be >= 0/],
  ];
  for (const [init, field, message] of cases) {
    test(`${JSON.stringify(init)} → ${field}`, () => {
      const problem = problemWith(init);
      expect(problem.field).toBe(field);
      expect(problem.message).toMatch(message);
    });
  }

  test("the edges of every range are accepted", () => {
    expect(
      () =>
        new SamplingParams({
          temperature: 0,
          topP: 1,
          topK: 1,
          minP: 1,
          presencePenalty: -2,
          frequencyPenalty: 2,
          logitBias: { 0: -100, 1: 100 },
          seed: -(2 ** 53 - 1),
          minTokens: 5,
          maxTokens: 5,
          logprobs: 20,
        }),
    ).not.toThrow();
  });

  test("token ids are checked against the vocabulary on admission", () => {
    const params = new SamplingParams({ logitBias: { 99: 1 }, stopTokenIds: [10] });
    expect(() => params.validateForVocab(100)).not.toThrow();
    expect(() => params.validateForVocab(50)).toThrow("logitBias token id 99 is outside the vocabulary (size 50)");
    expect(() => new SamplingParams({ stopTokenIds: [10] }).validateForVocab(10)).toThrow(
      "stopTokenIds token id 10 is outside the vocabulary (size 10)",
    );
  });
});

describe("withDefaults", () => {
  const qwen3 = { temperature: 0.6, topP: 0.95, topK: 20, minP: 0, repetitionPenalty: 1.05 };

  test("fills the fields the request left unset", () => {
    const params = withDefaults(new SamplingParams({ maxTokens: 64 }), qwen3);
    expect(params).toMatchObject({ ...qwen3, maxTokens: 64 });
  });

  test("never overrides what the request set, even to a default value", () => {
    const params = withDefaults(new SamplingParams({ temperature: 1, topK: -1, seed: 3 }), qwen3);
    expect(params).toMatchObject({ temperature: 1, topK: 0, topP: 0.95, seed: 3, repetitionPenalty: 1.05 });
  });

  test("an explicitly undefined field counts as unset", () => {
    expect(withDefaults(new SamplingParams({ temperature: undefined }), qwen3).temperature).toBe(0.6);
  });

  test("missing defaults leave vLLM's", () => {
    expect(withDefaults(new SamplingParams(), {})).toMatchObject({ temperature: 1, topP: 1, topK: 0 });
  });

  test("a bad default is blamed on generation_config.json", () => {
    expect(() => withDefaults(new SamplingParams(), { topP: 0 })).toThrow(
      "topP must be in (0, 1], got 0 (default from generation_config.json)",
    );
  });

  test("the result can take defaults again without losing the request's own fields", () => {
    const once = withDefaults(new SamplingParams({ topP: 0.5 }), qwen3);
    expect(withDefaults(once, { topP: 0.9, temperature: 0.1 })).toMatchObject({ topP: 0.5, temperature: 0.6 });
  });
});
