// The engine on the CUDA backend (the emulated library in CI, the real one on a GPU: see
// test/helpers/cuda-library.ts): greedy generation matches the CPU backend token for token with
// graphs and without, and device sampling keeps a seeded request's tokens independent of its batch.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { LLM, type LLMOptions } from "../../src/engine/llm.ts";
import { SamplingParams } from "../../src/engine/sampling-params.ts";
import { cudaLibraryUnderTest } from "../helpers/cuda-library.ts";
import { type RandomModel, TINY_SHAPE, writeRandomModel } from "../helpers/random-model.ts";

let model: RandomModel;
const engines: LLM[] = [];

beforeAll(async () => {
  model = await writeRandomModel({
    architecture: "Qwen3ForCausalLM",
    ...TINY_SHAPE,
    headDim: 32,
    maxPositionEmbeddings: 256,
    seed: 3,
  });
});
afterAll(async () => {
  for (const engine of engines) await engine.close();
});

function llm(options: Partial<LLMOptions>): LLM {
  const engine = new LLM({ model: model.dir, maxNumSeqs: 8, kvCacheMemory: 4 << 20, maxModelLen: 128, ...options });
  engines.push(engine);
  return engine;
}

const prompts = [[1, 2, 3, 4, 5], [7, 8], [9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21], [30]].map(
  (promptTokenIds) => ({ promptTokenIds }),
);

async function tokens(engine: LLM, params: SamplingParams | SamplingParams[], inputs = prompts): Promise<number[][]> {
  const outputs = await engine.generate(inputs, params);
  return outputs.map((o) => o.outputs[0]!.tokenIds);
}

describe("the engine on the CUDA backend", () => {
  const greedy = new SamplingParams({ temperature: 0, maxTokens: 10, ignoreEos: true });

  test("greedy tokens equal the CPU backend's, each replaying decode graphs and op by op", async () => {
    const cpu = await tokens(llm({ device: "cpu" }), greedy);
    const cpuEager = await tokens(llm({ device: "cpu", enforceEager: true }), greedy);
    const graphs = await tokens(llm({ libraryPath: cudaLibraryUnderTest }), greedy);
    const eager = await tokens(llm({ libraryPath: cudaLibraryUnderTest, enforceEager: true }), greedy);
    expect(cpu.every((t) => t.length === 10)).toBe(true);
    expect(cpuEager).toEqual(cpu);
    expect(graphs).toEqual(cpu);
    expect(eager).toEqual(cpu);
  });

  test("logprobs computed on the device equal the CPU backend's (greedy tokens, top 5 and ranks)", async () => {
    const params = new SamplingParams({ temperature: 0, maxTokens: 6, ignoreEos: true, logprobs: 5 });
    const cpu = await llm({ device: "cpu" }).generate(prompts, params);
    const cuda = await llm({ libraryPath: cudaLibraryUnderTest }).generate(prompts, params);
    cuda.forEach((output, p) => {
      const expected = cpu[p]!.outputs[0]!;
      const actual = output.outputs[0]!;
      expect(actual.tokenIds).toEqual(expected.tokenIds);
      expect(actual.logprobs!.length).toBe(6);
      actual.logprobs!.forEach((step, i) => {
        const want = expected.logprobs![i]!;
        expect(step.rank).toBe(want.rank);
        expect(step.logprob).toBeCloseTo(want.logprob, 4);
        expect(step.top.map((t) => t.tokenId)).toEqual(want.top.map((t) => t.tokenId));
        step.top.forEach((t, k) => {
          expect(t.logprob).toBeCloseTo(want.top[k]!.logprob, 4);
        });
      });
    });
  });

  test("seeded requests draw the same tokens on the CPU backend and on CUDA (both sample with vt_sample)", async () => {
    const params = prompts.map(
      (_, i) =>
        new SamplingParams({
          temperature: 0.8 + 0.1 * i,
          topK: 40,
          topP: 0.95,
          minP: 0.01,
          seed: 100 + i,
          maxTokens: 12,
          ignoreEos: true,
        }),
    );
    const cpu = await tokens(llm({ device: "cpu" }), params);
    const cuda = await tokens(llm({ libraryPath: cudaLibraryUnderTest }), params);
    expect(cpu.every((t) => t.length === 12)).toBe(true);
    expect(cuda).toEqual(cpu);
  });

  test("a seeded request samples the same tokens alone and in a batch, with graphs and without", async () => {
    const seeded = new SamplingParams({
      temperature: 0.9,
      topK: 20,
      topP: 0.9,
      seed: 77,
      maxTokens: 12,
      ignoreEos: true,
    });
    const others = prompts.map(() => new SamplingParams({ temperature: 1, maxTokens: 12, ignoreEos: true }));
    const engine = llm({ libraryPath: cudaLibraryUnderTest });
    const [alone] = await tokens(engine, seeded, [prompts[0]!]);
    const batch = await tokens(engine, [...others, seeded], [...prompts, prompts[0]!]);
    const [eager] = await tokens(llm({ libraryPath: cudaLibraryUnderTest, enforceEager: true }), seeded, [prompts[0]!]);
    expect(alone!.length).toBe(12);
    expect(batch.at(-1)).toEqual(alone!);
    expect(eager).toEqual(alone!);
  });

  test("static batching's padding rows and finished rows leave the greedy tokens the CPU's continuous ones", async () => {
    // Prompts of 1 to 13 tokens padded to the longest; outputs of 4 to 13 tokens, so rows finish
    // early and decode on (in replayed graphs too) until the batch ends.
    const params = prompts.map((_, i) => new SamplingParams({ temperature: 0, maxTokens: 4 + 3 * i, ignoreEos: true }));
    const cpu = await tokens(llm({ device: "cpu" }), params);
    const graphs = await tokens(llm({ libraryPath: cudaLibraryUnderTest, scheduling: "static" }), params);
    const eager = await tokens(
      llm({ libraryPath: cudaLibraryUnderTest, scheduling: "static", enforceEager: true }),
      params,
    );
    expect(cpu.map((t) => t.length)).toEqual([4, 7, 10, 13]);
    expect(graphs).toEqual(cpu);
    expect(eager).toEqual(cpu);
  });
});
