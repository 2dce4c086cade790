// What a mixture-of-experts model adds to a Llama-family config: how many experts each sparse
// layer has, how many a token goes to, their MLP width, whether the chosen experts' weights are
// renormalized, which layers are sparse (Qwen's decoder_sparse_step and mlp_only_layers; every
// layer in Mixtral), and Qwen2-MoE's shared expert.
import type { Architecture, ModelConfig } from "./config.ts";
import { fieldReader, type Json } from "./config-fields.ts";
import { ModelLoadError } from "./errors.ts";

export interface MoeConfig {
  numExperts: number;
  /** Experts per token (num_experts_per_tok). */
  topK: number;
  /** Each expert's MLP width. */
  expertIntermediateSize: number;
  /** The top-k probabilities divided by their sum (norm_topk_prob; Mixtral always). */
  normTopkProb: boolean;
  /** Per layer: sparse (experts) or a dense MLP of intermediate_size. */
  sparseLayers: boolean[];
  /**
   * Qwen2-MoE: the width of the shared expert, an MLP every token of a sparse layer goes through
   * beside its routed experts, its output scaled by sigmoid(shared_expert_gate · x); null without.
   */
  sharedExpertIntermediateSize: number | null;
}

export const MOE_ARCHITECTURES: readonly Architecture[] = [
  "Qwen2MoeForCausalLM",
  "Qwen3MoeForCausalLM",
  "MixtralForCausalLM",
];

export function isMoeArchitecture(architecture: Architecture): boolean {
  return MOE_ARCHITECTURES.includes(architecture);
}

// vt_moe_route's limits.
const MAX_EXPERTS = 1024;
const MAX_TOP_K = 32;

/** Why vt_moe_route cannot route this many experts, or null when it can. */
export function expertCountsProblem(numExperts: number, topK: number): string | null {
  if (numExperts <= MAX_EXPERTS && topK <= Math.min(numExperts, MAX_TOP_K)) return null;
  return `${numExperts} experts with ${topK} per token: supported are up to ${MAX_EXPERTS} experts and ${MAX_TOP_K} (at most all) per token`;
}

export function moeFields(
  fields: Json,
  file: string,
  config: Pick<ModelConfig, "architecture" | "numLayers">,
): MoeConfig {
  const read = fieldReader(fields, file);
  const mixtral = config.architecture === "MixtralForCausalLM";
  const numExperts = read.positiveInt(mixtral ? "num_local_experts" : "num_experts");
  const topK = read.positiveInt("num_experts_per_tok");
  const problem = expertCountsProblem(numExperts, topK);
  if (problem !== null) throw new ModelLoadError(file, problem);
  if (mixtral) {
    return {
      numExperts,
      topK,
      expertIntermediateSize: read.positiveInt("intermediate_size"),
      normTopkProb: true,
      sparseLayers: Array(config.numLayers).fill(true),
      sharedExpertIntermediateSize: null,
    };
  }
  const step = read.positiveInt("decoder_sparse_step", 1);
  const denseLayers = fields.mlp_only_layers ?? [];
  if (!Array.isArray(denseLayers) || !denseLayers.every((l) => Number.isInteger(l) && l >= 0 && l < config.numLayers))
    read.fail("mlp_only_layers", `a list of layer indices below ${config.numLayers}`);
  return {
    numExperts,
    topK,
    expertIntermediateSize: read.positiveInt("moe_intermediate_size"),
    normTopkProb: read.boolean("norm_topk_prob", false),
    // transformers' rule: a layer is sparse unless listed, every step-th one counting from 1.
    sparseLayers: Array.from(
      { length: config.numLayers },
      (_, layer) => !(denseLayers as number[]).includes(layer) && (layer + 1) % step === 0,
    ),
    sharedExpertIntermediateSize:
      config.architecture === "Qwen2MoeForCausalLM" ? read.positiveInt("shared_expert_intermediate_size") : null,
  };
}
