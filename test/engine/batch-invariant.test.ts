// Seeded sampling across preemption: a request's generator stays with it, so what it samples
// after being preempted and recomputed depends only on its logits. With --batch-invariant those
// logits are bit-identical whether its tokens were computed one per step (decode) or many at once
// (the recompute's prefill), so its output is the one it gets with room for everyone. The demo
// model is large enough for the two matmul paths to round differently.
import { expect, test } from "bun:test";
import { LLM } from "../../src/engine/llm.ts";
import { SamplingParams } from "../../src/engine/sampling-params.ts";

const prompts = ["Tell me a story", "Write a poem about the sea", "List ten fruits", "Explain gravity"];
const params = prompts.map(
  (_, i) => new SamplingParams({ temperature: 0.8, seed: 100 + i, maxTokens: 300, ignoreEos: true }),
);

async function generate(kvCacheMemory?: number) {
  const llm = new LLM({
    device: "cpu",
    maxModelLen: 320,
    batchInvariant: true,
    enablePrefixCaching: false,
    kvCacheMemory,
  });
  try {
    const outputs = (await llm.generate(prompts, params)).map((result) => result.outputs[0]!.tokenIds);
    return { outputs, preemptions: (await llm.stats()).numPreemptions };
  } finally {
    await llm.close();
  }
}

test("with --batch-invariant, seeded requests sample the same tokens whether or not they were preempted", async () => {
  const roomy = await generate();
  expect(roomy.preemptions).toBe(0);
  // Room for about 1.1 sequences of 320 tokens: requests are preempted and recomputed repeatedly.
  const tight = await generate(1_200_000);
  expect(tight.preemptions).toBeGreaterThanOrEqual(2);
  expect(tight.outputs).toEqual(roomy.outputs);
}, 60_000);
