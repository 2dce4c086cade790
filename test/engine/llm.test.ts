// The offline LLM API end to end on a small random model through the native CPU backend:
// batching, preemption, prefix caching, parallel sampling, stop strings and admission errors
// must never change what a request generates.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { LLM, type LLMOptions } from "../../src/engine/llm.ts";
import { SamplingParams } from "../../src/engine/sampling-params.ts";
import { KvCacheTensors } from "../../src/worker/kv-cache-tensors.ts";
import { type RandomModel, TINY_SHAPE, writeRandomModel } from "../helpers/random-model.ts";

let model: RandomModel;
const open: LLM[] = [];

function llm(options: LLMOptions = {}): LLM {
  const engine = new LLM({ model: model.dir, device: "cpu", maxModelLen: 96, ...options });
  open.push(engine);
  return engine;
}

beforeAll(async () => {
  model = await writeRandomModel({
    architecture: "Qwen3ForCausalLM",
    ...TINY_SHAPE,
    headDim: 16,
    seed: 21,
    maxPositionEmbeddings: 256,
  });
});
afterAll(async () => {
  for (const engine of open) await engine.close();
});

const prompts = [
  "The quick brown fox",
  "a",
  "Once upon a time, in a land far away, there lived a king who",
  "def add(a, b):\n    return",
  "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15",
  "hello hello hello",
];
const greedy = (maxTokens: number) => new SamplingParams({ temperature: 0, maxTokens, ignoreEos: true });

async function alone(engine: LLM, prompt: string, params: SamplingParams) {
  return (await engine.generate(prompt, params))[0]!.outputs[0]!;
}

describe("LLM.generate", () => {
  test("a batch gives every prompt the tokens it gets alone, in prompt order", async () => {
    const engine = llm();
    const batch = await engine.generate(prompts, greedy(12));
    expect(batch.map((r) => r.prompt)).toEqual(prompts);
    for (const [i, prompt] of prompts.entries()) {
      const single = await alone(engine, prompt, greedy(12));
      expect(batch[i]!.outputs[0]!.tokenIds).toEqual(single.tokenIds);
      expect(batch[i]!.outputs[0]!.tokenIds.length).toBe(12);
      expect(batch[i]!.outputs[0]!.finishReason).toBe("length");
    }
  });

  test("preemption under a tiny KV budget loses nothing: same tokens as unpreempted", async () => {
    const reference = await llm().generate(prompts, greedy(24));
    const loaded = await llm().model();
    const blockSize = 4;
    // 30 blocks of 4 tokens: far less than 6 requests of up to ~50 tokens need at once.
    const kvCacheMemory = 30 * KvCacheTensors.bytesPerBlock(loaded.config, blockSize, "f32");
    const tiny = llm({ blockSize, kvCacheMemory, maxModelLen: 96 });
    const outputs = await tiny.generate(prompts, greedy(24));
    expect((await tiny.stats()).numPreemptions).toBeGreaterThan(0);
    outputs.forEach((r, i) => {
      expect(r.outputs[0]!.tokenIds).toEqual(reference[i]!.outputs[0]!.tokenIds);
    });
  });

  test("a prompt sharing a cached prefix computes only the rest, with the uncached output", async () => {
    const prefix = "System: you are a helpful assistant that answers briefly and precisely. User: ";
    const uncached = llm({ enablePrefixCaching: false, blockSize: 16 });
    const cached = llm({ blockSize: 16 });
    await cached.generate(`${prefix}first question`, greedy(8));
    const before = await cached.stats();
    const second = await alone(cached, `${prefix}second one`, greedy(8));
    const after = await cached.stats();
    expect(after.prefixCacheHitRate).toBeGreaterThan(before.prefixCacheHitRate);
    expect(second.tokenIds).toEqual((await alone(uncached, `${prefix}second one`, greedy(8))).tokenIds);
  });

  test("both static baselines produce continuous batching's tokens: padding and finished rows change nothing", async () => {
    // Prompts of different lengths (padded to the longest) ending at different steps (finished
    // rows computed on), with logprobs, which wait with their tokens for the batch's end.
    const params = prompts.map(
      (_, i) => new SamplingParams({ temperature: 0, maxTokens: 3 + 2 * i, ignoreEos: true, logprobs: 1 }),
    );
    const continuous = await llm().generate(prompts, params);
    for (const scheduling of ["static", "static-drop"] as const) {
      const outputs = await llm({ scheduling, maxModelLen: 64, maxNumSeqs: 4 }).generate(prompts, params);
      outputs.forEach((r, i) => {
        const { tokenIds, logprobs, finishReason } = r.outputs[0]!;
        expect(tokenIds).toEqual(continuous[i]!.outputs[0]!.tokenIds);
        expect(tokenIds).toHaveLength(3 + 2 * i);
        expect(finishReason).toBe("length");
        expect(logprobs!.map(({ top }) => top[0]!.tokenId)).toEqual(tokenIds);
      });
    }
  });

  test("n > 1 with a seed: samples differ from each other and repeat across runs", async () => {
    const params = new SamplingParams({ n: 3, temperature: 1, seed: 7, maxTokens: 16, ignoreEos: true });
    const first = await llm().generate("Tell me a story", params);
    const second = await llm().generate("Tell me a story", params);
    const samples = first[0]!.outputs.map((o) => o.tokenIds.join(","));
    expect(new Set(samples).size).toBe(3);
    expect(second[0]!.outputs.map((o) => o.tokenIds.join(","))).toEqual(samples);
    expect(first[0]!.outputs.map((o) => o.index)).toEqual([0, 1, 2]);
  });

  test("a seeded sample is the same alone and inside a batch", async () => {
    const seeded = new SamplingParams({ temperature: 0.8, seed: 1234, maxTokens: 12, ignoreEos: true });
    const engine = llm();
    const single = await alone(engine, "Seeded prompt", seeded);
    const others = prompts.map(() => new SamplingParams({ temperature: 1, maxTokens: 12, ignoreEos: true }));
    const batch = await engine.generate([...prompts, "Seeded prompt"], [...others, seeded]);
    expect(batch.at(-1)!.outputs[0]!.tokenIds).toEqual(single.tokenIds);
  });

  test("a stop string ends the text before it, and the request stops there", async () => {
    const engine = llm();
    const free = await alone(engine, "The quick brown fox", greedy(20));
    expect(free.text.length).toBeGreaterThan(4);
    const stop = free.text.slice(3, 5);
    const stopped = await alone(
      engine,
      "The quick brown fox",
      new SamplingParams({ temperature: 0, maxTokens: 20, ignoreEos: true, stop: [stop] }),
    );
    expect(stopped.finishReason).toBe("stop");
    expect(stopped.stopReason).toBe(stop);
    expect(stopped.text).toBe(free.text.slice(0, free.text.indexOf(stop)));
    expect(stopped.tokenIds.length).toBeLessThan(20);
  });

  test("a prompt longer than max model length is rejected with a clear error, others still run", async () => {
    const engine = llm({ maxModelLen: 32 });
    const long = "word ".repeat(80);
    const [rejected, fine] = await engine.generate([long, "short"], greedy(4));
    expect(rejected!.error).toContain("max model length is 32");
    expect(rejected!.outputs[0]!.finishReason).toBe("rejected");
    expect(fine!.outputs[0]!.tokenIds.length).toBe(4);
  });
});
