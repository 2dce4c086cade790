// Gemma 2, Gemma 3, Phi-3 and the mixtures of experts through the whole engine: greedy generation
// is the same op by op and with decode graphs (whose CPU capture records every op, the new ones
// included), and on the CUDA backend as on the CPU, over prompts longer than the sliding window.
import { afterAll, describe, expect, test } from "bun:test";
import { LLM, type LLMOptions } from "../../src/engine/llm.ts";
import { SamplingParams } from "../../src/engine/sampling-params.ts";
import { cudaLibraryUnderTest } from "../helpers/cuda-library.ts";
import { type RandomModelOptions, TINY_SHAPE, writeRandomModel } from "../helpers/random-model.ts";

const engines: LLM[] = [];
afterAll(async () => {
  for (const engine of engines) await engine.close();
});

const families: { name: string; options: RandomModelOptions }[] = [
  {
    name: "Gemma 2 (soft-capping, a sliding layer and a global one)",
    options: {
      architecture: "Gemma2ForCausalLM",
      headDim: 16,
      tieWordEmbeddings: true,
      slidingWindow: 16,
      attnLogitSoftcapping: 2,
      finalLogitSoftcapping: 10,
    },
  },
  {
    name: "Gemma 3 (q/k norms, local and global RoPE)",
    options: {
      architecture: "Gemma3ForCausalLM",
      headDim: 16,
      tieWordEmbeddings: true,
      slidingWindow: 16,
      slidingWindowPattern: 2,
      ropeScaling: { type: "linear", factor: 8 },
    },
  },
  {
    name: "Phi-3 (fused checkpoint tensors, partial rotary)",
    options: { architecture: "Phi3ForCausalLM", partialRotaryFactor: 0.5 },
  },
  {
    name: "Qwen3-MoE (a dense layer, then a sparse one of 8 experts, 2 per token)",
    options: {
      architecture: "Qwen3MoeForCausalLM",
      headDim: 16,
      experts: { numExperts: 8, topK: 2, width: 32, mlpOnlyLayers: [0] },
    },
  },
  {
    name: "Mixtral (4 experts, 2 per token)",
    options: { architecture: "MixtralForCausalLM", experts: { numExperts: 4, topK: 2, width: 48 } },
  },
  {
    name: "Qwen2-MoE (8 experts, 4 per token, and a shared expert)",
    options: {
      architecture: "Qwen2MoeForCausalLM",
      attentionBias: true,
      experts: { numExperts: 8, topK: 4, width: 24, normTopkProb: false, sharedWidth: 64 },
    },
  },
];

// Two prompts longer than the window of 16.
const prompts = [
  Array.from({ length: 30 }, (_, i) => (i * 7 + 3) % 90),
  [5, 6, 7],
  Array.from({ length: 20 }, (_, i) => i + 1),
].map((promptTokenIds) => ({ promptTokenIds }));

describe("greedy generation agrees across execution paths", () => {
  for (const { name, options } of families)
    test(name, async () => {
      const model = await writeRandomModel({
        ...TINY_SHAPE,
        maxPositionEmbeddings: 256,
        seed: 7,
        ...options,
      });
      const run = async (engineOptions: Partial<LLMOptions>) => {
        const engine = new LLM({
          model: model.dir,
          maxNumSeqs: 4,
          kvCacheMemory: 4 << 20,
          maxModelLen: 128,
          ...engineOptions,
        });
        engines.push(engine);
        const outputs = await engine.generate(
          prompts,
          new SamplingParams({ temperature: 0, maxTokens: 12, ignoreEos: true }),
        );
        return outputs.map((o) => o.outputs[0]!.tokenIds);
      };
      const graphs = await run({ device: "cpu" });
      expect(graphs.every((tokens) => tokens.length === 12)).toBe(true);
      expect(await run({ device: "cpu", enforceEager: true })).toEqual(graphs);
      expect(await run({ libraryPath: cudaLibraryUnderTest })).toEqual(graphs);
    });
});
