// A model read from a GGUF file is the model its safetensors folder holds: the same config, the
// same tensors under the same names (Llama's q/k rows put back, a mixture's stacked experts one
// tensor each), and the engine computes the same logprobs and greedy tokens from either, for F32,
// F16 and BF16 files of each architecture.
import { afterAll, describe, expect, test } from "bun:test";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { TorchDtypeName } from "../../src/backend/dtype.ts";
import { LLM } from "../../src/engine/llm.ts";
import { SamplingParams } from "../../src/engine/sampling-params.ts";
import type { Architecture } from "../../src/model/config.ts";
import { ggufModel, ggufTensorStore } from "../../src/model/gguf/gguf-model.ts";
import { openSafetensors } from "../../src/model/safetensors.ts";
import { type GgufFloatType, writeGgufModel } from "../helpers/gguf-model-writer.ts";
import { f32, str, u32 } from "../helpers/gguf-writer.ts";
import { type RandomModel, type RandomModelOptions, writeRandomModel } from "../helpers/random-model.ts";

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

async function randomModel(options: RandomModelOptions): Promise<RandomModel> {
  const model = await writeRandomModel({
    hiddenSize: 64,
    intermediateSize: 96,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    maxPositionEmbeddings: 256,
    ...options,
  });
  dirs.push(model.dir);
  return model;
}

/** Llama 3.1's rope_scaling, which a GGUF file carries as a rope_freqs tensor. */
const LLAMA31_SCALING = {
  type: "llama3",
  factor: 8,
  lowFreqFactor: 1,
  highFreqFactor: 4,
  originalMaxPositionEmbeddings: 8192,
} as const;

const TORCH_NAME: Record<GgufFloatType, TorchDtypeName> = { F32: "float32", F16: "float16", BF16: "bfloat16" };

/** Mixtures of experts as llama.cpp stores them: qwen3moe, qwen2moe (a shared expert), llama (Mixtral). */
const MIXTURES: [Architecture, RandomModelOptions][] = [
  ["Qwen3MoeForCausalLM", { experts: { numExperts: 8, topK: 2, width: 32 } }],
  [
    "Qwen2MoeForCausalLM",
    { attentionBias: true, experts: { numExperts: 8, topK: 4, width: 32, normTopkProb: false, sharedWidth: 48 } },
  ],
  ["MixtralForCausalLM", { experts: { numExperts: 4, topK: 2, width: 96 } }],
];

describe("config from GGUF metadata", () => {
  const cases: [Architecture, RandomModelOptions][] = [
    ["LlamaForCausalLM", { tieWordEmbeddings: false }],
    ["MistralForCausalLM", { tieWordEmbeddings: true }],
    ["Qwen2ForCausalLM", { tieWordEmbeddings: true }],
    ["Qwen3ForCausalLM", { tieWordEmbeddings: false, headDim: 32 }],
    ["LlamaForCausalLM", { ropeScaling: LLAMA31_SCALING }],
    ...MIXTURES,
  ];
  for (const [architecture, options] of cases) {
    const feature = options.ropeScaling
      ? " (Llama 3.1's RoPE scaling, as rope_freqs)"
      : options.experts
        ? " (experts)"
        : "";
    test(`${architecture}${feature}: every field the engine uses matches config.json's`, async () => {
      const model = await randomModel({ architecture, dtype: "bfloat16", ...options });
      const { config, generationConfig } = ggufModel(await writeGgufModel(model, { type: "BF16" }));
      const expected = model.config;
      expect(config).toEqual({
        ...expected,
        // Mistral files are llama files; their sliding window is not in GGUF metadata.
        architecture: architecture === "MistralForCausalLM" ? "LlamaForCausalLM" : architecture,
        slidingWindow: null,
        rmsNormEps: Math.fround(expected.rmsNormEps),
        eosTokenIds: [expected.eosTokenIds[0]!],
      });
      expect(generationConfig).toEqual({ eosTokenIds: config.eosTokenIds, bosTokenId: expected.bosTokenId! });
    });
  }

  test("the weights' dtype is the type most matrices have", async () => {
    const model = await randomModel({ architecture: "Qwen3ForCausalLM", dtype: "float16" });
    for (const type of ["F32", "F16", "BF16"] as const) {
      const file = await writeGgufModel(model, { type, file: join(model.dir, `${type}.gguf`) });
      expect(ggufModel(file).config.dtype).toBe(({ F32: "f32", F16: "f16", BF16: "bf16" } as const)[type]);
    }
  });

  test("an end-of-turn token joins the end-of-sequence one", async () => {
    const model = await randomModel({ architecture: "LlamaForCausalLM" });
    const metadata = { "tokenizer.ggml.eot_token_id": u32(3) };
    const file = await writeGgufModel(model, { type: "F32", metadata });
    expect(ggufModel(file).config.eosTokenIds).toEqual([model.config.eosTokenIds[0]!, 3]);
  });

  test("unsupported architectures, RoPE scalings and missing hyper-parameters are refused by name", async () => {
    const model = await randomModel({ architecture: "LlamaForCausalLM" });
    const refusal = async (metadata: Parameters<typeof writeGgufModel>[1]["metadata"]) => {
      const file = await writeGgufModel(model, { type: "F32", metadata, file: join(model.dir, "bad.gguf") });
      try {
        ggufModel(file);
      } catch (error) {
        return (error as Error).message;
      }
      throw new Error("loaded");
    };
    expect(await refusal({ "general.architecture": str("gemma2") })).toContain(
      'metadata "general.architecture" is "gemma2", which is not supported (supported: llama, qwen2, qwen3, qwen2moe, qwen3moe)',
    );
    expect(await refusal({ "llama.rope.scaling.type": str("yarn") })).toContain(
      'metadata "llama.rope.scaling.type" is "yarn"; only unscaled RoPE',
    );
    expect(await refusal({ "llama.block_count": str("two") })).toContain(
      'metadata "llama.block_count" must be an integer, got "two"',
    );
    expect(await refusal({ "split.count": u32(3) })).toContain("one of 3 parts of a split model");
    // Experts in a llama file (Mixtral) that the router could not serve, or scaled as DeepSeek's.
    expect(await refusal({ "llama.expert_count": u32(2000), "llama.expert_used_count": u32(2) })).toContain(
      'metadata "llama.expert_used_count" (2000 experts with 2 per token: supported are up to 1024 experts',
    );
    const experts = { "llama.expert_count": u32(8), "llama.expert_used_count": u32(2) };
    expect(await refusal({ ...experts, "llama.expert_weights_scale": f32(2.5) })).toContain(
      'metadata "llama.expert_weights_scale" is 2.5; only unscaled routing weights are supported',
    );
  });

  test("rope_freqs that are not Llama 3.1's scaling are refused", async () => {
    const model = await randomModel({ architecture: "LlamaForCausalLM", ropeScaling: LLAMA31_SCALING });
    const { ggufBytes } = await import("../helpers/gguf-writer.ts");
    const { ggufModelMetadata, ggufModelTensors } = await import("../helpers/gguf-model-writer.ts");
    const tensors = ggufModelTensors(model, "F32").map((tensor) =>
      tensor.name === "rope_freqs.weight"
        ? {
            ...tensor,
            data: new Uint8Array(
              Float32Array.of(...new Array(8).fill(3), ...new Array(tensor.shape[0]! - 8).fill(1.5)).buffer,
            ),
          }
        : tensor,
    );
    const file = join(model.dir, "odd-rope.gguf");
    await Bun.write(file, ggufBytes(ggufModelMetadata(model), tensors));
    expect(() => ggufModel(file)).toThrow("rope_freqs.weight (per-frequency RoPE divisors) is not Llama 3.1's scaling");
  });
});

describe("tensors from GGUF", () => {
  const cases: [Architecture, RandomModelOptions][] = [
    ["LlamaForCausalLM", {}],
    ["Qwen2ForCausalLM", {}],
    // Stacked experts, one Hugging Face tensor each; Mixtral's q/k rows permuted as Llama's.
    ...MIXTURES.slice(1),
  ];
  for (const [architecture, options] of cases) {
    test(`${architecture}${options.experts ? " (experts)" : ""}: every tensor has the safetensors bytes under its Hugging Face name`, async () => {
      const model = await randomModel({ architecture, numKvHeads: 4, ...options });
      const file = await writeGgufModel(model, { type: "F32" });
      const gguf = ggufTensorStore(file, model.config);
      const safetensors = openSafetensors(model.dir);
      expect(gguf.names().toSorted()).toEqual(safetensors.names().toSorted());
      for (const name of safetensors.names()) {
        const expected = safetensors.tensor(name);
        const actual = gguf.tensor(name);
        expect({ name, shape: actual.shape, dtype: actual.dtype }).toEqual({
          name,
          shape: expected.shape,
          dtype: "f32",
        });
        expect(Buffer.from(actual.bytes).equals(Buffer.from(expected.bytes))).toBe(true);
      }
    });
  }

  test("experts stored one per tensor (conversions older than stacked experts) are refused", async () => {
    const [architecture, options] = MIXTURES[2]!;
    const model = await randomModel({ architecture, ...options });
    const { ggufBytes } = await import("../helpers/gguf-writer.ts");
    const { ggufModelMetadata, ggufModelTensors } = await import("../helpers/gguf-model-writer.ts");
    const old = { name: "blk.0.ffn_gate.0.weight", typeId: 0, shape: [96, 64], data: new Uint8Array(96 * 64 * 4) };
    const file = join(model.dir, "unstacked.gguf");
    await Bun.write(file, ggufBytes(ggufModelMetadata(model), [...ggufModelTensors(model, "F32"), old]));
    expect(() => ggufTensorStore(file, ggufModel(file).config)).toThrow(
      "tensor blk.0.ffn_gate.0.weight holds one expert of a layer: a conversion older than llama.cpp's stacked experts",
    );
  });

  test("a tensor of a type the engine does not load is refused by name and type, its raw blocks still readable", async () => {
    const model = await randomModel({ architecture: "Qwen3ForCausalLM" });
    const file = join(model.dir, "model.gguf");
    await writeGgufModel(model, { type: "F32", file });
    const { ggufBytes } = await import("../helpers/gguf-writer.ts");
    // Q2_K: 256 values in 84 bytes, a format llama.cpp has and this engine does not.
    const q2k = { name: "blk.0.attn_q.weight", typeId: 10, shape: [64, 256], data: new Uint8Array(64 * 84) };
    const quantized = join(model.dir, "quantized.gguf");
    await Bun.write(quantized, ggufBytes({ "general.architecture": str("qwen3") }, [q2k]));
    const store = ggufTensorStore(quantized, model.config);
    expect(store.raw("model.layers.0.self_attn.q_proj.weight").type.name).toBe("Q2_K");
    expect(() => store.tensor("model.layers.0.self_attn.q_proj.weight")).toThrow(
      "tensor blk.0.attn_q.weight is Q2_K, which this engine does not load (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)",
    );
  });
});

describe("the engine on a GGUF file", () => {
  const prompts = ["The quick brown fox", "hello hello", "1 2 3 4 5 6 7 8"];
  const params = new SamplingParams({ temperature: 0, maxTokens: 8, ignoreEos: true, logprobs: 3 });

  async function generate(model: string) {
    const llm = new LLM({ model, device: "cpu", maxModelLen: 64 });
    try {
      const outputs = await llm.generate(prompts, params);
      return outputs.map((output) => ({ prompt: output.promptTokenIds, ...output.outputs[0]! }));
    } finally {
      await llm.close();
    }
  }

  const cases: [Architecture, GgufFloatType][] = [
    ["LlamaForCausalLM", "F32"],
    ["LlamaForCausalLM", "F16"],
    ["LlamaForCausalLM", "BF16"],
    ["Qwen2ForCausalLM", "F16"],
    ["Qwen3ForCausalLM", "BF16"],
  ];
  test("LlamaForCausalLM with Llama 3.1's RoPE scaling (rope_freqs): the same tokens as the safetensors folder", async () => {
    const model = await randomModel({ architecture: "LlamaForCausalLM", ropeScaling: LLAMA31_SCALING, seed: 5 });
    const file = await writeGgufModel(model, { type: "F32" });
    expect(await generate(file)).toEqual(await generate(model.dir));
  });
  const withMixtures: [Architecture, GgufFloatType, RandomModelOptions][] = [
    ...cases.map(([architecture, type]): [Architecture, GgufFloatType, RandomModelOptions] => [architecture, type, {}]),
    ...MIXTURES.map(([architecture, options], i): [Architecture, GgufFloatType, RandomModelOptions] => [
      architecture,
      (["BF16", "F16", "F32"] as const)[i]!,
      options,
    ]),
  ];
  for (const [architecture, type, options] of withMixtures) {
    test(`${architecture}${options.experts ? " (experts)" : ""} in ${type}: the same prompt ids, tokens and logprobs as the safetensors folder`, async () => {
      const model = await randomModel({ architecture, dtype: TORCH_NAME[type], seed: 5, ...options });
      const file = await writeGgufModel(model, { type });
      const [fromFolder, fromGguf] = [await generate(model.dir), await generate(file)];
      expect(fromGguf).toEqual(fromFolder);
      expect(fromGguf[0]!.tokenIds.length).toBe(8);
    });
  }
});
