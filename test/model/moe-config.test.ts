// Mixture-of-experts config.json files (Qwen3-MoE, Mixtral) read into the experts' shape and the
// layers that are sparse, and what the engine does not implement refused with the field named.
import { describe, expect, test } from "bun:test";
import { loadModelConfig, parseModelConfig } from "../../src/model/config.ts";
import { expectedShapes } from "../../src/model/weight-names.ts";

const QWEN3_30B_A3B = await loadModelConfig("bench/models/qwen3-30b-a3b");
const MIXTRAL_8X7B = await loadModelConfig("bench/models/mixtral-8x7b");

describe("mixture-of-experts configs", () => {
  test("Qwen3-30B-A3B: 128 experts of width 768, 8 per token renormalized, every layer sparse, Qwen3 attention", () => {
    expect(QWEN3_30B_A3B.moe).toEqual({
      numExperts: 128,
      topK: 8,
      expertIntermediateSize: 768,
      normTopkProb: true,
      sparseLayers: Array(48).fill(true),
    });
    expect(QWEN3_30B_A3B.qkNorm).toBe(true);
    const shapes = expectedShapes(QWEN3_30B_A3B);
    expect(shapes.get("model.layers.5.mlp.gate.weight")).toEqual([128, 2048]);
    expect(shapes.get("model.layers.5.mlp.experts.127.up_proj.weight")).toEqual([768, 2048]);
    expect(shapes.get("model.layers.5.mlp.experts.0.down_proj.weight")).toEqual([2048, 768]);
    expect(shapes.has("model.layers.5.mlp.down_proj.weight")).toBe(false);
  });

  test("Mixtral-8x7B: 8 experts of intermediate_size, 2 per token, always renormalized", () => {
    expect(MIXTRAL_8X7B.moe).toEqual({
      numExperts: 8,
      topK: 2,
      expertIntermediateSize: 14336,
      normTopkProb: true,
      sparseLayers: Array(32).fill(true),
    });
    expect(MIXTRAL_8X7B.slidingWindow).toBeNull();
    const shapes = expectedShapes(MIXTRAL_8X7B);
    expect(shapes.get("model.layers.0.block_sparse_moe.gate.weight")).toEqual([8, 4096]);
    expect(shapes.get("model.layers.0.block_sparse_moe.experts.7.w3.weight")).toEqual([14336, 4096]);
    expect(shapes.get("model.layers.0.block_sparse_moe.experts.7.w2.weight")).toEqual([4096, 14336]);
  });

  const qwen = (fields: Record<string, unknown>) =>
    parseModelConfig(
      {
        architectures: ["Qwen3MoeForCausalLM"],
        hidden_size: 64,
        intermediate_size: 96,
        num_hidden_layers: 6,
        num_attention_heads: 4,
        vocab_size: 100,
        num_experts: 8,
        num_experts_per_tok: 2,
        moe_intermediate_size: 32,
        ...fields,
      },
      "config.json",
    );

  test("dense layers: mlp_only_layers and decoder_sparse_step, as transformers reads them", () => {
    expect(qwen({ mlp_only_layers: [0, 3] }).moe!.sparseLayers).toEqual([false, true, true, false, true, true]);
    expect(qwen({ decoder_sparse_step: 2 }).moe!.sparseLayers).toEqual([false, true, false, true, false, true]);
    expect(qwen({}).moe!.normTopkProb).toBe(false);
  });

  test("missing or impossible expert fields are refused with the field named", () => {
    expect(() => qwen({ num_experts: undefined })).toThrow(/missing required field "num_experts"/);
    expect(() => qwen({ moe_intermediate_size: 0 })).toThrow(/"moe_intermediate_size" must be a positive integer/);
    expect(() => qwen({ num_experts_per_tok: 9 })).toThrow(/8 experts with 9 per token/);
    expect(() => qwen({ num_experts: 2000 })).toThrow(/up to 1024 experts/);
    expect(() => qwen({ mlp_only_layers: [6] })).toThrow(/"mlp_only_layers" must be a list of layer indices below 6/);
  });

  test("Qwen2-MoE (a shared expert beside the routed ones) is not supported yet, and says so", () => {
    expect(() => parseModelConfig({ architectures: ["Qwen2MoeForCausalLM"], hidden_size: 64 }, "config.json")).toThrow(
      /unsupported architecture Qwen2MoeForCausalLM/,
    );
  });
});
