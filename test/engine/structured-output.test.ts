// Structured outputs in the engine, with real tokenizers (Qwen3's and Llama 3's vocabularies)
// and random weights: at temperature 1 a random model writes noise, so every output that parses
// and validates does so because the grammar's masks allowed nothing else.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Ajv from "ajv";
import { EngineCore } from "../../src/engine/engine-core.ts";
import { LLM, type LLMOptions } from "../../src/engine/llm.ts";
import { openModelOnDevice } from "../../src/engine/model-on-device.ts";
import { Request } from "../../src/engine/request.ts";
import { SamplingParams } from "../../src/engine/sampling-params.ts";
import type { StructuredOutputs } from "../../src/engine/structured-output/structured-outputs.ts";
import { KvCacheTensors } from "../../src/worker/kv-cache-tensors.ts";
import { type RealTokenizer, writeRealTokenizerModel } from "../helpers/real-tokenizer-model.ts";

const SCHEMAS: Record<string, Record<string, unknown>> = {
  nested: {
    type: "object",
    properties: {
      user: {
        type: "object",
        properties: { name: { type: "string", maxLength: 8 }, admin: { type: "boolean" } },
        required: ["name", "admin"],
      },
      score: { type: "integer", minimum: -5, maximum: 250 },
    },
    required: ["user", "score"],
  },
  arrays: {
    type: "object",
    properties: {
      tags: { type: "array", items: { enum: ["red", "green", "blue"] }, maxItems: 3 },
      flags: { type: "array", items: { type: "boolean" }, minItems: 1, maxItems: 2 },
    },
    required: ["tags", "flags"],
  },
  anyOf: {
    type: "object",
    properties: {
      value: {
        anyOf: [
          { type: "integer", minimum: 0, maximum: 9 },
          { type: "string", maxLength: 4 },
        ],
      },
      kind: { enum: ["a", "b", 3] },
    },
    required: ["value", "kind"],
  },
  optional: {
    type: "object",
    properties: { id: { type: "integer", minimum: 1, maximum: 99 }, note: { type: "string", maxLength: 6 } },
    required: ["id"],
  },
};

const SEEDS = [1, 2, 3];
const ajv = new Ajv();

for (const tokenizer of ["qwen3", "llama3"] as RealTokenizer[]) {
  describe(`structured outputs with the ${tokenizer} vocabulary`, () => {
    let llm: LLM;
    beforeAll(async () => {
      const model = await writeRealTokenizerModel(tokenizer, { seed: 5 });
      llm = new LLM({ model: model.dir, device: "cpu", maxModelLen: 512 });
    });
    afterAll(async () => {
      await llm.close();
    });

    const sampled = (structuredOutputs: StructuredOutputs, seed: number, n = 1) =>
      new SamplingParams({ temperature: 1, seed, maxTokens: 300, n, structuredOutputs });

    async function outputs(structuredOutputs: StructuredOutputs, n: number) {
      const params = SEEDS.map((seed) => sampled(structuredOutputs, seed, n));
      const results = await llm.generate(
        SEEDS.map(() => "Answer in JSON:"),
        params,
      );
      return results.flatMap((result) => {
        expect(result.error).toBeNull();
        return result.outputs;
      });
    }

    /** The outputs of a bounded language: each ends because the grammar let it end. */
    async function texts(structuredOutputs: StructuredOutputs, n = 1): Promise<string[]> {
      return (await outputs(structuredOutputs, n)).map((output) => {
        expect(output.finishReason).toBe("stop");
        return output.text;
      });
    }

    for (const [name, schema] of Object.entries(SCHEMAS)) {
      test(`every sample validates against the ${name} schema`, async () => {
        const validate = ajv.compile(schema);
        for (const text of await texts({ json: schema }, 2)) {
          const value = JSON.parse(text);
          if (!validate(value)) throw new Error(`${text}: ${ajv.errorsText(validate.errors)}`);
        }
      });
    }

    test("json_object output is a JSON object", async () => {
      // Any object is unbounded, so noise may run to max_tokens: those outputs are cut objects.
      const all = await outputs({ jsonObject: true }, 4);
      const stopped = all.filter((output) => output.finishReason === "stop");
      expect(stopped.length).toBeGreaterThan(0);
      for (const { text } of stopped) {
        const value = JSON.parse(text);
        expect(typeof value === "object" && value !== null && !Array.isArray(value)).toBe(true);
      }
      for (const { text } of all) expect(text.startsWith("{")).toBe(true);
    }, 60_000);

    test("regex and choice outputs match", async () => {
      for (const text of await texts({ regex: "[a-z]{2,5}-[0-9]{1,3}" }))
        expect(text).toMatch(/^[a-z]{2,5}-[0-9]{1,3}$/);
      const choices = ["yes", "no", "maybe so", 'say "hi"'];
      for (const text of await texts({ choice: choices })) expect(choices).toContain(text);
    });

    test("an EBNF grammar's language", async () => {
      const grammar = 'root ::= "(" num ("+" num)* ")"\nnum ::= [1-9] [0-9]?';
      for (const text of await texts({ grammar })) expect(text).toMatch(/^\([1-9][0-9]?(\+[1-9][0-9]?)*\)$/);
    });
  });
}

describe("constrained requests among others", () => {
  let modelDir: string;
  let bytesPerBlock: number;
  beforeAll(async () => {
    const model = await writeRealTokenizerModel("qwen3", { seed: 9 });
    modelDir = model.dir;
    bytesPerBlock = KvCacheTensors.bytesPerBlock(model.config, 16, "f32");
  });

  const schema = SCHEMAS.nested!;
  const constrained = new SamplingParams({ temperature: 0, maxTokens: 120, structuredOutputs: { json: schema } });
  const free = new SamplingParams({ temperature: 0, maxTokens: 100, ignoreEos: true });
  const prompts = ["one", "two two", "three three three", "four"];

  async function run(options: LLMOptions, batch: boolean, preemptions = 0) {
    const llm = new LLM({ model: modelDir, device: "cpu", maxModelLen: 128, ...options });
    try {
      const params = prompts.map((_, i) => (i % 2 === 0 ? constrained : free));
      if (batch) {
        const outputs = (await llm.generate(prompts, params)).map((r) => r.outputs[0]!.tokenIds);
        expect((await llm.stats()).numPreemptions).toBeGreaterThanOrEqual(preemptions);
        return outputs;
      }
      const alone = [];
      for (const [i, prompt] of prompts.entries())
        alone.push((await llm.generate(prompt, params[i]!))[0]!.outputs[0]!.tokenIds);
      return alone;
    } finally {
      await llm.close();
    }
  }

  test("batched with unconstrained requests, each gets the tokens it gets alone (greedy)", async () => {
    const alone = await run({}, false);
    expect(await run({}, true)).toEqual(alone);
    // With async scheduling, steps with a constrained request run in turns (a grammar takes each
    // token before it masks the next), the others overlap.
    expect(await run({ asyncScheduling: true }, true)).toEqual(alone);
  });

  test("a grammar that does not compile fails its own request; the others and later ones go on", async () => {
    const llm = new LLM({ model: modelDir, device: "cpu", maxModelLen: 128 });
    try {
      const bad = new SamplingParams({ temperature: 0, maxTokens: 20, structuredOutputs: { regex: "[a-" } });
      const results = await llm.generate(["one", "two", "three"], [bad, constrained, free]);
      expect(results[0]!.error).toMatch(/invalid structured output/);
      expect(results[1]!.error).toBeNull();
      expect(() => JSON.parse(results[1]!.outputs[0]!.text)).not.toThrow();
      expect(results[2]!.outputs[0]!.tokenIds.length).toBe(100);
      const later = await llm.generate("four", constrained);
      expect(ajv.validate(schema, JSON.parse(later[0]!.outputs[0]!.text))).toBe(true);
    } finally {
      await llm.close();
    }
  });

  test("a request aborted while its grammar compiles leaves nothing behind; the next is served", async () => {
    const { backend, model, close } = await openModelOnDevice({ model: modelDir, device: "cpu" });
    const core = EngineCore.create(backend, model, { maxModelLen: 128 }, { dir: modelDir, ggufFile: null });
    try {
      const request = (id: string) =>
        new Request({ requestId: id, promptTokenIds: [1, 2, 3], samplingParams: constrained, eosTokenIds: [0] });
      core.addRequest(request("aborted"));
      core.abort(["aborted"]);
      core.addRequest(request("served"));
      const finished: string[] = [];
      while (core.hasUnfinishedRequests())
        for (const output of await core.step()) if (output.finished) finished.push(output.requestId);
      expect(finished).toEqual(["served"]);
      expect(core.stats()).toMatchObject({ numRunning: 0, numWaiting: 0, kvCacheUsage: 0 });
    } finally {
      core.close();
      close();
    }
  });

  test("preemption under a tiny KV budget loses nothing", async () => {
    const alone = await run({}, false);
    // Room for 9 blocks (144 tokens), a little more than one sequence: the batch preempts and recomputes.
    const tight = await run({ kvCacheMemory: 9 * bytesPerBlock, blockSize: 16, enablePrefixCaching: false }, true, 1);
    expect(tight).toEqual(alone);
  });
});
