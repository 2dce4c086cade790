// Mixture-of-experts config.json files (Qwen2-MoE, Qwen3-MoE, Mixtral) read into the experts' shape and the
// layers that are sparse, and what the engine does not implement refused with the field named.
import { describe, expect, test } from "bun:test";
import { loadModelConfig, parseModelConfig } from "../../src/model/config.ts";
import { expectedShapes } from "../../src/model/weight-names.ts";

const QWEN3_30B_A3B = await loadModelConfig("bench/models/qwen3-30b-a3b");
const MIXTRAL_8X7B = await loadModelConfig("bench/models/mixtral-8x7b");
const QWEN15_MOE_A27B = await loadModelConfig("bench/models/qwen1.5-moe-a2.7b");
const QWEN15_MOE_JSON: Record<string, unknown> = await Bun.file("bench/models/qwen1.5-moe-a2.7b/config.json").json();

describe("mixture-of-experts configs", () => {
  test("Qwen3-30B-A3B: 128 experts of width 768, 8 per token renormalized, every layer sparse, Qwen3 attention", () => {
    expect(QWEN3_30B_A3B.moe).toEqual({
      numExperts: 128,
      topK: 8,
      expertIntermediateSize: 768,
      normTopkProb: true,
      sparseLayers: Array(48).fill(true),
      sharedExpertIntermediateSize: null,
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
      sharedExpertIntermediateSize: null,
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

  test("Qwen1.5-MoE-A2.7B: 60 experts of width 1408, 4 per token, and a shared expert of width 5632 with its gate", () => {
    expect(QWEN15_MOE_A27B.moe).toEqual({
      numExperts: 60,
      topK: 4,
      expertIntermediateSize: 1408,
      normTopkProb: false,
      sparseLayers: Array(24).fill(true),
      sharedExpertIntermediateSize: 5632,
    });
    // Qwen2's attention: q/k/v biases, no q/k norm.
    expect(QWEN15_MOE_A27B.attentionBias).toBe(true);
    expect(QWEN15_MOE_A27B.qkNorm).toBe(false);
    expect(QWEN15_MOE_A27B.slidingWindow).toBeNull();
    const shapes = expectedShapes(QWEN15_MOE_A27B);
    expect(shapes.get("model.layers.3.mlp.gate.weight")).toEqual([60, 2048]);
    expect(shapes.get("model.layers.3.mlp.experts.59.gate_proj.weight")).toEqual([1408, 2048]);
    expect(shapes.get("model.layers.3.mlp.shared_expert.up_proj.weight")).toEqual([5632, 2048]);
    expect(shapes.get("model.layers.3.mlp.shared_expert.down_proj.weight")).toEqual([2048, 5632]);
    expect(shapes.get("model.layers.3.mlp.shared_expert_gate.weight")).toEqual([1, 2048]);
    expect(shapes.get("model.layers.3.self_attn.k_proj.bias")).toEqual([2048]);
  });

  test("Qwen2-MoE needs its shared expert's width; qkv_bias false drops the biases", () => {
    const raw = { ...QWEN15_MOE_JSON };
    delete raw.shared_expert_intermediate_size;
    expect(() => parseModelConfig(raw, "config.json")).toThrow(
      /missing required field "shared_expert_intermediate_size"/,
    );
    expect(parseModelConfig({ ...QWEN15_MOE_JSON, qkv_bias: false }, "config.json").attentionBias).toBe(false);
  });
});
