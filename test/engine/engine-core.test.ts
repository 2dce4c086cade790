// Engine core set-up: the KV cache's block count comes from the memory budget and the model's
// per-token KV size, and a budget that cannot hold one sequence is refused with a clear message;
// the step budget defaults by device.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Backend } from "../../src/backend/backend.ts";
import { EngineCore } from "../../src/engine/engine-core.ts";
import { type EngineModel, loadModelWeights, resolveModel } from "../../src/model/load-model.ts";
import { KvCacheTensors } from "../../src/worker/kv-cache-tensors.ts";
import { cudaLibraryUnderTest } from "../helpers/cuda-library.ts";
import { writeRandomModel } from "../helpers/random-model.ts";

let backend: Backend;
let model: EngineModel;
let modelDir: string;

beforeAll(async () => {
  backend = await Backend.open({ device: "cpu" });
  const written = await writeRandomModel({
    architecture: "LlamaForCausalLM",
    dtype: "bfloat16",
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    maxPositionEmbeddings: 256,
  });
  modelDir = written.dir;
  model = loadModelWeights(backend, await resolveModel(modelDir));
});
afterAll(() => {
  model.weights.free();
  backend.close();
});

describe("EngineCore KV-cache sizing", () => {
  test("blocks = budget / bytes per block (2 x layers x block size x KV heads x head dim x dtype)", () => {
    const bytesPerBlock = KvCacheTensors.bytesPerBlock(model.config, 16, "bf16");
    expect(bytesPerBlock).toBe(2 * 2 * 16 * 2 * 16 * 2);
    const core = EngineCore.create(backend, model, {
      kvCacheMemory: 100 * bytesPerBlock + bytesPerBlock / 2,
      blockSize: 16,
    });
    expect(core.kvCacheSize.numBlocks).toBe(100);
    expect(core.kvCacheSize.maxTokens).toBe(1600);
    core.close();
  });

  test("the utilization budget leaves the weights and activations out and gives a usable cache", () => {
    const core = EngineCore.create(backend, model, { gpuMemoryUtilization: 0.9 });
    expect(core.kvCacheSize.maxTokens).toBeGreaterThanOrEqual(256);
    expect(core.kvCacheSize.bytes).toBeLessThanOrEqual(0.9 * backend.memoryInfo().totalBytes);
    core.close();
  });

  test("a budget below one max-length sequence is refused with the flags to change", () => {
    const bytesPerBlock = KvCacheTensors.bytesPerBlock(model.config, 16, "bf16");
    expect(() => EngineCore.create(backend, model, { kvCacheMemory: 4 * bytesPerBlock, maxModelLen: 256 })).toThrow(
      /--kv-cache-memory.*--max-model-len/,
    );
  });

  test("max model length beyond the model's positions is refused", () => {
    expect(() => EngineCore.create(backend, model, { maxModelLen: 1000 })).toThrow(/max_position_embeddings 256/);
  });
});

describe("EngineCore step budget", () => {
  const kvCacheMemory = 1 << 20;

  test("on the CPU a step holds 256 tokens unless --max-num-batched-tokens says otherwise", () => {
    const byDefault = EngineCore.create(backend, model, { kvCacheMemory });
    expect(byDefault.config.maxNumBatchedTokens).toBe(256);
    byDefault.close();
    const given = EngineCore.create(backend, model, { kvCacheMemory, maxNumBatchedTokens: 4096 });
    expect(given.config.maxNumBatchedTokens).toBe(4096);
    given.close();
  });

  test("on CUDA a step holds 2048 tokens by default", async () => {
    const cuda = await Backend.open({ libraryPath: cudaLibraryUnderTest });
    const onCuda = loadModelWeights(cuda, await resolveModel(modelDir));
    try {
      const core = EngineCore.create(cuda, onCuda, { kvCacheMemory });
      expect(core.config.maxNumBatchedTokens).toBe(2048);
      core.close();
    } finally {
      onCuda.weights.free();
      cuda.close();
    }
  });

  test("without chunked prefill the budget grows to a whole max-length prompt", () => {
    const core = EngineCore.create(backend, model, { kvCacheMemory, enableChunkedPrefill: false, maxModelLen: 200 });
    expect(core.config.maxNumBatchedTokens).toBe(256);
    core.close();
    const longer = EngineCore.create(backend, model, {
      kvCacheMemory,
      enableChunkedPrefill: false,
      maxNumBatchedTokens: 64,
      maxModelLen: 200,
    });
    expect(longer.config.maxNumBatchedTokens).toBe(200);
    longer.close();
  });
});
