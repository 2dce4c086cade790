// Async scheduling through the whole engine (--async-scheduling): the next step is scheduled
// before the previous one's tokens are known and each step is reported while the next one runs,
// which must change no request's tokens, on the CPU and on the CUDA library, whatever happens
// while a step is in flight: preemption, a stop string that aborts the request, an abort from
// the client, a request that ends on EOS, host-side sampling (penalties), seeded sampling.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { EngineCore } from "../../src/engine/engine-core.ts";
import { LLM, type LLMOptions } from "../../src/engine/llm.ts";
import { openModelOnDevice } from "../../src/engine/model-on-device.ts";
import { Request } from "../../src/engine/request.ts";
import { SamplingParams } from "../../src/engine/sampling-params.ts";
import { KvCacheTensors } from "../../src/worker/kv-cache-tensors.ts";
import { cudaLibraryUnderTest } from "../helpers/cuda-library.ts";
import { type RandomModel, TINY_SHAPE, writeRandomModel } from "../helpers/random-model.ts";

let model: RandomModel;
beforeAll(async () => {
  model = await writeRandomModel({
    architecture: "Qwen3ForCausalLM",
    ...TINY_SHAPE,
    headDim: 16,
    seed: 23,
    maxPositionEmbeddings: 256,
  });
});
const open: LLM[] = [];
afterAll(async () => {
  for (const engine of open) await engine.close();
});

const prompts = [
  "The quick brown fox",
  "a",
  "Once upon a time, in a land far away, there lived a king who",
  "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15",
  "hello hello hello",
];

/** A mix: greedy, seeded sampling, penalties (sampled on the host), n = 2, a short one. */
const mixed = [
  new SamplingParams({ temperature: 0, maxTokens: 24, ignoreEos: true }),
  new SamplingParams({ temperature: 0.8, topP: 0.9, seed: 5, maxTokens: 20, ignoreEos: true }),
  new SamplingParams({ temperature: 0, repetitionPenalty: 1.3, maxTokens: 16, ignoreEos: true }),
  new SamplingParams({ temperature: 1, seed: 7, n: 2, maxTokens: 12, ignoreEos: true }),
  new SamplingParams({ temperature: 0, maxTokens: 1 }),
];

async function generate(
  options: LLMOptions,
  params: SamplingParams | SamplingParams[] = mixed,
  promptList: string[] = prompts,
) {
  const engine = new LLM({ model: model.dir, maxModelLen: 96, maxNumSeqs: 8, ...options });
  open.push(engine);
  const results = await engine.generate(promptList, params);
  return {
    tokens: results.map((r) => r.outputs.map((o) => o.tokenIds)),
    texts: results.map((r) => r.outputs.map((o) => o.text)),
    stats: await engine.stats(),
  };
}

const devices: [string, LLMOptions][] = [
  ["the CPU", { device: "cpu" }],
  ["the CUDA library", { libraryPath: cudaLibraryUnderTest }],
];

describe.each(devices)("async scheduling on %s", (_, device) => {
  test("every request gets the tokens it gets without it: greedy, seeded, penalties, n = 2", async () => {
    const sync = await generate(device);
    const overlapped = await generate({ ...device, asyncScheduling: true });
    expect(overlapped.tokens).toEqual(sync.tokens);
    expect(sync.tokens[0]![0]!.length).toBe(24);
    expect(sync.tokens[3]!.length).toBe(2);
  });

  test("the same under preemption (a KV cache of a few blocks), every request sampled with its seed", async () => {
    const bytesPerBlock = KvCacheTensors.bytesPerBlock(model.config, 16, "f32");
    const tight = { ...device, kvCacheMemory: 8 * bytesPerBlock, maxModelLen: 64 };
    // A token drawn again after a preemption would come from a later draw of the request's seed.
    const seeded = prompts.map(
      (_, i) => new SamplingParams({ temperature: 1, seed: 10 + i, maxTokens: 24, ignoreEos: true }),
    );
    const sync = await generate(tight, seeded);
    const overlapped = await generate({ ...tight, asyncScheduling: true }, seeded);
    expect(overlapped.stats.numPreemptions).toBeGreaterThan(0);
    expect(overlapped.tokens).toEqual(sync.tokens);
  });

  test("a stop string ends a request while its next step is in flight, with the same text", async () => {
    const two = prompts.slice(0, 2);
    const free = await generate(device, new SamplingParams({ temperature: 0, maxTokens: 24, ignoreEos: true }), two);
    const text = free.texts[0]![0]!;
    // A piece of the text from its middle: the request stops there, in any mode.
    const stop = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 2);
    const params = new SamplingParams({ temperature: 0, maxTokens: 24, ignoreEos: true, stop: [stop] });
    const sync = await generate(device, params, two);
    const overlapped = await generate({ ...device, asyncScheduling: true }, params, two);
    expect(overlapped.texts).toEqual(sync.texts);
    expect(sync.texts[0]![0]!.length).toBeLessThan(text.length);
  });
});

test("a request aborted while its step is in flight frees its blocks; the others finish as without it", async () => {
  const { backend, model: loaded, close } = await openModelOnDevice({ model: model.dir, device: "cpu" });
  const run = async (asyncScheduling: boolean) => {
    const core = EngineCore.create(backend, loaded, { maxModelLen: 96, asyncScheduling });
    try {
      const params = new SamplingParams({ temperature: 0, maxTokens: 16, ignoreEos: true });
      for (const [i, prompt] of [
        [1, 2, 3],
        [4, 5, 6, 7],
        [8, 9],
      ].entries())
        core.addRequest(new Request({ requestId: `r${i}`, promptTokenIds: prompt, samplingParams: params }));
      const tokens = new Map<string, number[]>();
      for (let step = 0; core.hasUnfinishedRequests(); step++) {
        for (const output of await core.step())
          tokens.set(output.requestId, [...(tokens.get(output.requestId) ?? []), ...output.newTokenIds]);
        if (step === 4) core.abort(["r1"]);
      }
      expect(core.stats()).toMatchObject({ numRunning: 0, numWaiting: 0, kvCacheUsage: 0 });
      return tokens;
    } finally {
      core.close();
    }
  };
  try {
    const sync = await run(false);
    const overlapped = await run(true);
    expect(overlapped.get("r0")).toEqual(sync.get("r0")!);
    expect(overlapped.get("r2")).toEqual(sync.get("r2")!);
    expect(sync.get("r0")!.length).toBe(16);
    // Aborted after a few steps: it got some tokens and not all.
    expect(overlapped.get("r1")!.length).toBeLessThan(16);
  } finally {
    close();
  }
});

test("async scheduling needs continuous scheduling, and says so", async () => {
  const { backend, model: loaded, close } = await openModelOnDevice({ model: model.dir, device: "cpu" });
  try {
    expect(() => EngineCore.create(backend, loaded, { scheduling: "static", asyncScheduling: true })).toThrow(
      /--async-scheduling needs --scheduling continuous, not static/,
    );
  } finally {
    close();
  }
});
