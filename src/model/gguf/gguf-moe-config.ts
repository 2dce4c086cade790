// The experts of a mixture in a GGUF file: llama.cpp's qwen2moe and qwen3moe files, and llama
// files with experts (Mixtral). <arch>.expert_count and expert_used_count, the experts' width
// (expert_feed_forward_length; Mixtral's is its feed_forward_length), Qwen2-MoE's shared expert
// (expert_shared_feed_forward_length), every layer sparse, and the top-k weights renormalized or
// not as llama.cpp's graph for the architecture does it.
import type { MoeConfig } from "../moe-config.ts";
import { expertCountsProblem } from "../moe-config.ts";
import type { GgufMetadata } from "./gguf-metadata.ts";

/** Per GGUF architecture that may hold experts: whether the chosen experts' weights are renormalized. */
const RENORMALIZES: Record<string, boolean> = { llama: true, qwen2moe: false, qwen3moe: true };

/** The file's experts; null for a dense model (a llama file without expert_count). */
export function ggufMoeConfig(
  metadata: GgufMetadata,
  arch: string,
  numLayers: number,
  intermediateSize: number,
): MoeConfig | null {
  const key = (name: string) => `${arch}.${name}`;
  const renormalizes = RENORMALIZES[arch];
  if (renormalizes === undefined || (arch === "llama" && (metadata.optionalInteger(key("expert_count")) ?? 0) === 0))
    return null;
  const numExperts = metadata.positiveInteger(key("expert_count"));
  const topK = metadata.positiveInteger(key("expert_used_count"));
  const problem = expertCountsProblem(numExperts, topK);
  if (problem !== null) metadata.fail(key("expert_used_count"), `(${problem})`);
  // A scale on the routing weights is other architectures' (DeepSeek's); llama.cpp applies it
  // whenever the file sets it.
  const scale = metadata.positiveNumber(key("expert_weights_scale"), 1);
  if (scale !== 1)
    metadata.fail(key("expert_weights_scale"), `is ${scale}; only unscaled routing weights are supported`);
  return {
    numExperts,
    topK,
    expertIntermediateSize:
      arch === "llama" ? intermediateSize : metadata.positiveInteger(key("expert_feed_forward_length")),
    normTopkProb: renormalizes,
    sparseLayers: Array(numLayers).fill(true),
    sharedExpertIntermediateSize:
      arch === "qwen2moe" ? metadata.positiveInteger(key("expert_shared_feed_forward_length"), intermediateSize) : null,
  };
}
