// The paged, batched native forward against the plain reference forward: several sequences
// whose prompts arrive in prefill chunks of different sizes, mixed in one batch with other
// sequences' decodes, their KV blocks scattered over the cache, for every architecture.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Backend } from "../../src/backend/backend.ts";
import type { Architecture } from "../../src/model/config.ts";
import { referenceForward } from "../../src/reference/forward.ts";
import { compareWithReference, tokens } from "../helpers/forward-schedule.ts";
import { type RandomModelOptions, writeRandomModel } from "../helpers/random-model.ts";

let backend: Backend;
beforeAll(async () => {
  backend = await Backend.open({ device: "cpu" });
});
afterAll(() => backend.close());

const architectures: { architecture: Architecture; options: RandomModelOptions }[] = [
  { architecture: "LlamaForCausalLM", options: { numHeads: 4, numKvHeads: 2, tieWordEmbeddings: false } },
  {
    architecture: "LlamaForCausalLM",
    options: {
      numHeads: 4,
      numKvHeads: 1,
      ropeScaling: {
        type: "llama3",
        factor: 8,
        lowFreqFactor: 1,
        highFreqFactor: 4,
        originalMaxPositionEmbeddings: 16,
      },
    },
  },
  { architecture: "MistralForCausalLM", options: { numHeads: 4, numKvHeads: 4, slidingWindow: 24 } },
  { architecture: "Qwen2ForCausalLM", options: { numHeads: 4, numKvHeads: 2, tieWordEmbeddings: true } },
  { architecture: "Qwen3ForCausalLM", options: { numHeads: 4, numKvHeads: 2, headDim: 32, tieWordEmbeddings: true } },
  // Layer 0 slides over 16 tokens (shorter than two of the sequences), layer 1 is global; caps of
  // 2 and 10 that many scores and logits exceed (see below; attention scale 1/sqrt(8), not
  // 1/sqrt(head_dim)).
  {
    architecture: "Gemma2ForCausalLM",
    options: {
      numHeads: 4,
      numKvHeads: 2,
      headDim: 16,
      tieWordEmbeddings: true,
      slidingWindow: 16,
      queryPreAttnScalar: 8,
      attnLogitSoftcapping: 2,
      finalLogitSoftcapping: 10,
    },
  },
  // Sliding layers with their own RoPE theta, a global one with linear scaling (as Gemma 3 4B).
  {
    architecture: "Gemma3ForCausalLM",
    options: {
      numHeads: 4,
      numKvHeads: 1,
      headDim: 32,
      numLayers: 3,
      tieWordEmbeddings: true,
      slidingWindow: 16,
      slidingWindowPattern: 3,
      ropeScaling: { type: "linear", factor: 8 },
    },
  },
  // The language model of a checkpoint with a vision tower (as google/gemma-3-4b-it).
  {
    architecture: "Gemma3ForCausalLM",
    options: {
      numHeads: 4,
      numKvHeads: 2,
      headDim: 16,
      tieWordEmbeddings: true,
      slidingWindow: 16,
      slidingWindowPattern: 2,
      visionTower: true,
    },
  },
  { architecture: "Phi3ForCausalLM", options: { numHeads: 4, numKvHeads: 4, slidingWindow: 24 } },
  { architecture: "Phi3ForCausalLM", options: { numHeads: 4, numKvHeads: 2, partialRotaryFactor: 0.5 } },
  // Mixtures of experts: a dense first layer (mlp_only_layers) before sparse ones; every other
  // layer sparse with 64 experts, 8 per token, weights not renormalized; Mixtral's all sparse;
  // Qwen2-MoE's shared expert.
  {
    architecture: "Qwen3MoeForCausalLM",
    options: {
      numHeads: 4,
      numKvHeads: 2,
      headDim: 16,
      numLayers: 3,
      experts: { numExperts: 8, topK: 2, width: 32, mlpOnlyLayers: [0] },
    },
  },
  {
    architecture: "Qwen3MoeForCausalLM",
    options: {
      numHeads: 4,
      numKvHeads: 4,
      experts: { numExperts: 64, topK: 8, width: 16, normTopkProb: false, decoderSparseStep: 2 },
    },
  },
  {
    architecture: "MixtralForCausalLM",
    options: { numHeads: 4, numKvHeads: 2, experts: { numExperts: 4, topK: 2, width: 48 } },
  },
  // Qwen2-MoE: a shared expert wider than the dense layer's MLP (whose buffers it uses).
  {
    architecture: "Qwen2MoeForCausalLM",
    options: {
      numHeads: 4,
      numKvHeads: 2,
      numLayers: 3,
      attentionBias: true,
      experts: { numExperts: 8, topK: 4, width: 16, normTopkProb: false, mlpOnlyLayers: [1], sharedWidth: 160 },
    },
  },
];

/** What a case sets beyond the architecture, for its test's name. */
function features(options: RandomModelOptions): string {
  const parts: string[] = [];
  if (options.ropeScaling) parts.push(`${options.ropeScaling.type} rope`);
  if (options.slidingWindow) parts.push("sliding window");
  if (options.attnLogitSoftcapping || options.finalLogitSoftcapping) parts.push("soft-capping");
  if (options.partialRotaryFactor) parts.push("partial rotary");
  if (options.visionTower) parts.push("text part of a checkpoint with a vision tower");
  if (options.experts) parts.push(`${options.experts.numExperts} experts, top ${options.experts.topK}`);
  if (options.experts?.sharedWidth) parts.push("shared expert");
  return parts.length > 0 ? ` (${parts.join(", ")})` : "";
}

describe("paged batched forward equals the reference forward", () => {
  for (const { architecture, options } of architectures) {
    for (const blockSize of [16, 32]) {
      const label = `${architecture}${features(options)}, block size ${blockSize}`;
      test(label, async () => {
        const model = await writeRandomModel({
          architecture,
          dtype: "float32",
          hiddenSize: 64,
          intermediateSize: 96,
          numLayers: 2,
          seed: 11,
          ...options,
        });
        const { maxError, logitScale } = await compareWithReference(backend, model, blockSize, "f32");
        expect(logitScale).toBeGreaterThan(0.5);
        if (options.finalLogitSoftcapping) expect(logitScale).toBeLessThan(options.finalLogitSoftcapping);
        expect(maxError).toBeLessThanOrEqual(1e-4 * logitScale);
      });
    }
  }

  /**
   * A small bf16 model (these options over the shared ones) through the forward with a bf16 KV
   * cache: the cache's bf16 rounding (and with bf16 activations on CUDA, theirs) separates it from
   * the reference on the stored weights, a few parts in a thousand of the logits' scale.
   */
  async function expectBf16Close(options: RandomModelOptions) {
    const model = await writeRandomModel({
      dtype: "bfloat16",
      hiddenSize: 64,
      intermediateSize: 96,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      seed: 5,
      ...options,
    });
    const { maxError, logitScale, weightDtype } = await compareWithReference(backend, model, 16, "bf16");
    expect(weightDtype).toBe("bf16");
    expect(maxError).toBeLessThanOrEqual(2e-2 * logitScale);
  }

  test("bf16 weights and KV cache stay close to the reference on the stored weights", () =>
    expectBf16Close({ architecture: "Qwen3ForCausalLM", headDim: 32 }));

  test("the Gemma 2 case's caps are active: uncapped, its logits and attention scores exceed them", async () => {
    const gemma2 = architectures.find((a) => a.architecture === "Gemma2ForCausalLM")!.options;
    const model = await writeRandomModel({
      architecture: "Gemma2ForCausalLM",
      dtype: "float32",
      hiddenSize: 64,
      intermediateSize: 96,
      numLayers: 2,
      seed: 11,
      ...gemma2,
    });
    const prompt = tokens(40, model.config.vocabSize, 1);
    const maxAbs = (values: Float32Array) => values.reduce((max, v) => Math.max(max, Math.abs(v)), 0);
    const capped = referenceForward(model.config, model.weights, prompt);
    const uncappedLogits = referenceForward({ ...model.config, finalLogitSoftcapping: null }, model.weights, prompt);
    const uncappedScores = referenceForward({ ...model.config, attnLogitSoftcapping: null }, model.weights, prompt);
    expect(maxAbs(uncappedLogits)).toBeGreaterThan(1.2 * gemma2.finalLogitSoftcapping!);
    expect(maxAbs(capped)).toBeLessThan(gemma2.finalLogitSoftcapping!);
    // Capping the scores changes the logits by far more than the comparison's tolerance.
    let difference = 0;
    for (let i = 0; i < capped.length; i++)
      difference = Math.max(difference, Math.abs(capped[i]! - uncappedScores[i]!));
    expect(difference).toBeGreaterThan(0.1);
  });

  // Every expert takes every token, so the activations' rounding cannot flip a top-k choice that
  // the reference makes on a near tie. On CUDA the prefill steps (8 or more tokens) run the tensor
  // cores' tile over each expert's tokens, the decode steps the gather GEMV.
  test("a bf16 mixture of experts (Qwen2-MoE, with its shared expert) stays close to the reference on the stored weights", () =>
    expectBf16Close({
      architecture: "Qwen2MoeForCausalLM",
      experts: { numExperts: 4, topK: 4, width: 48, sharedWidth: 80 },
    }));

  // With bf16 activations, Gemma's norm weights are held as bf16(1 + w): within the same bound.
  for (const architecture of ["Gemma2ForCausalLM", "Gemma3ForCausalLM", "Phi3ForCausalLM"] as const)
    test(`bf16 ${architecture} stays close to the reference on the stored weights`, () =>
      expectBf16Close({
        architecture,
        headDim: 16,
        slidingWindow: 16,
        slidingWindowPattern: 2,
        attnLogitSoftcapping: architecture === "Gemma2ForCausalLM" ? 2 : null,
        finalLogitSoftcapping: architecture === "Gemma2ForCausalLM" ? 10 : null,
      }));
});
