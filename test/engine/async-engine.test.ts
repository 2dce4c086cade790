// The async engine: the core in a Worker, requests streamed as deltas. Streaming must give the
// offline API's text, requests join and leave a running batch, and leaving a stream aborts the
// request and frees its blocks.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { AsyncEngine } from "../../src/engine/async-engine.ts";
import { LLM } from "../../src/engine/llm.ts";
import type { CompletionDelta } from "../../src/engine/output-processor.ts";
import { SamplingParams } from "../../src/engine/sampling-params.ts";
import { type RandomModel, TINY_SHAPE, writeRandomModel } from "../helpers/random-model.ts";

let model: RandomModel;
let engine: AsyncEngine;

beforeAll(async () => {
  model = await writeRandomModel({
    architecture: "LlamaForCausalLM",
    ...TINY_SHAPE,
    seed: 8,
    maxPositionEmbeddings: 512,
  });
  engine = await AsyncEngine.start({ model: model.dir, device: "cpu", maxModelLen: 512 });
});
afterAll(async () => {
  await engine.shutdown();
});

async function collect(stream: AsyncIterable<CompletionDelta>) {
  const deltas: CompletionDelta[] = [];
  for await (const delta of stream) deltas.push(delta);
  return deltas;
}

const greedy = (maxTokens: number, extra: Partial<ConstructorParameters<typeof SamplingParams>[0]> = {}) =>
  new SamplingParams({ temperature: 0, maxTokens, ignoreEos: true, ...extra });

describe("AsyncEngine", () => {
  test("streamed deltas add up to the offline API's output", async () => {
    const prompt = "The quick brown fox jumps";
    const ids = engine.tokenizer.encode(prompt);
    const deltas = await collect(engine.generate("stream-1", ids, greedy(20)));
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.at(-1)!.finished).toBe(true);
    const offline = new LLM({ model: model.dir, device: "cpu", maxModelLen: 512 });
    const [expected] = await offline.generate(prompt, greedy(20));
    await offline.close();
    expect(deltas.map((d) => d.text).join("")).toBe(expected!.outputs[0]!.text);
    expect(deltas.flatMap((d) => d.tokenIds)).toEqual(expected!.outputs[0]!.tokenIds);
  });

  test("a short request that arrives while a long one runs finishes first", async () => {
    const finishOrder: string[] = [];
    const long = (async () => {
      for await (const delta of engine.generate("long", engine.tokenizer.encode("long story"), greedy(300))) {
        if (delta.finished) finishOrder.push("long");
      }
    })();
    // Wait until the long request is decoding, then send the short one.
    while ((engine.latestStats?.numRunning ?? 0) === 0) await Bun.sleep(1);
    for await (const delta of engine.generate("short", engine.tokenizer.encode("hi"), greedy(3))) {
      if (delta.finished) finishOrder.push("short");
    }
    await long;
    expect(finishOrder).toEqual(["short", "long"]);
  });

  test("leaving a stream early aborts the request and frees its KV blocks", async () => {
    let received = 0;
    for await (const _ of engine.generate("left", engine.tokenizer.encode("abandon me"), greedy(400))) {
      if (++received === 3) break;
    }
    expect(engine.numUnfinishedSequences).toBe(0);
    const stats = await engine.stats();
    expect(stats.numRunning + stats.numWaiting).toBe(0);
    expect(stats.kvCacheUsage).toBe(0);
  });

  test("many concurrent streams all complete with their own tokens", async () => {
    const prompts = Array.from({ length: 12 }, (_, i) => `request number ${i} says`);
    const results = await Promise.all(
      prompts.map((p, i) => collect(engine.generate(`many-${i}`, engine.tokenizer.encode(p), greedy(8 + (i % 5))))),
    );
    results.forEach((deltas, i) => {
      expect(deltas.flatMap((d) => d.tokenIds).length).toBe(8 + (i % 5));
      expect(deltas.at(-1)!.output.finishReason).toBe("length");
    });
  });

  test("n > 1 streams every sample, each with its index", async () => {
    const deltas = await collect(
      engine.generate(
        "parallel",
        engine.tokenizer.encode("pick"),
        new SamplingParams({ n: 3, temperature: 1, seed: 3, maxTokens: 5, ignoreEos: true }),
      ),
    );
    const indices = new Set(deltas.map((d) => d.output.index));
    expect([...indices].sort()).toEqual([0, 1, 2]);
    expect(deltas.filter((d) => d.finished).length).toBe(3);
  });

  test("a prompt longer than max model length is rejected with a message", async () => {
    const deltas = await collect(engine.generate("too-long", new Array(600).fill(5), greedy(4)));
    expect(deltas).toHaveLength(1);
    expect(deltas[0]!.output.finishReason).toBe("rejected");
    expect(deltas[0]!.error).toContain("max model length is 512");
  });

  test("after shutdown, new requests and stats fail with a clear error instead of hanging", async () => {
    const other = await AsyncEngine.start({ model: model.dir, device: "cpu", maxModelLen: 512 });
    expect(other.failure).toBeNull();
    await other.shutdown();
    expect(other.failure?.message).toContain("shut down");
    expect(() => other.generate("late", [1, 2, 3], greedy(2))).toThrow("shut down");
    await expect(other.stats()).rejects.toThrow("shut down");
  });
});
