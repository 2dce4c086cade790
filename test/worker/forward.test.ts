// The paged, batched native forward against the plain reference forward: several sequences
// whose prompts arrive in prefill chunks of different sizes, mixed in one batch with other
// sequences' decodes, their KV blocks scattered over the cache, for every architecture.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Backend } from "../../src/backend/backend.ts";
import type { Architecture } from "../../src/model/config.ts";
import { compareWithReference } from "../helpers/forward-schedule.ts";
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
];

describe("paged batched forward equals the reference forward", () => {
  for (const { architecture, options } of architectures) {
    for (const blockSize of [16, 32]) {
      const label = `${architecture}${options.ropeScaling ? " (llama3 rope)" : ""}${options.slidingWindow ? " (sliding window)" : ""}, block size ${blockSize}`;
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
        expect(maxError).toBeLessThanOrEqual(1e-4 * logitScale);
      });
    }
  }

  test("bf16 weights and KV cache stay close to the reference on the stored weights", async () => {
    const model = await writeRandomModel({
      architecture: "Qwen3ForCausalLM",
      dtype: "bfloat16",
      hiddenSize: 64,
      intermediateSize: 96,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 32,
      seed: 5,
    });
    const { maxError, logitScale, weightDtype } = await compareWithReference(backend, model, 16, "bf16");
    expect(weightDtype).toBe("bf16");
    // Only the cache's bf16 rounding separates the two; it costs a few parts in a thousand.
    expect(maxError).toBeLessThanOrEqual(2e-2 * logitScale);
  });
});
