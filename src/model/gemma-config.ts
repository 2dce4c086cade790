// What Gemma 2 and Gemma 3 (text) add to a Llama-family config: the GeGLU activation, scaled
// embeddings, (1 + w) norms around both sublayers, attention scaled by query_pre_attn_scalar,
// soft-capped scores and logits, sliding and global layers interleaved, and (Gemma 3) q/k norms
// with a RoPE theta of their own on the sliding layers. Defaults are those of transformers'
// Gemma2Config and Gemma3TextConfig.
import type { LayerType, ModelConfig } from "./config.ts";
import { fieldReader, type Json } from "./config-fields.ts";
import { ModelLoadError } from "./errors.ts";

type GemmaFields = Pick<
  ModelConfig,
  | "qkNorm"
  | "slidingWindow"
  | "layerTypes"
  | "localRopeTheta"
  | "hiddenAct"
  | "attentionScale"
  | "attnLogitSoftcapping"
  | "finalLogitSoftcapping"
  | "embeddingScale"
  | "normWeightsFromOne"
  | "sandwichNorms"
>;

const LAYER_TYPES: readonly LayerType[] = ["full_attention", "sliding_attention"];

/** Which layers slide: layer_types when given, else each family's fixed pattern. */
function parseLayerTypes(fields: Json, file: string, gemma3: boolean, numLayers: number): LayerType[] {
  const read = fieldReader(fields, file);
  const listed = fields.layer_types;
  if (listed !== undefined && listed !== null) {
    if (
      !Array.isArray(listed) ||
      listed.length !== numLayers ||
      !listed.every((t): t is LayerType => LAYER_TYPES.includes(t))
    ) {
      read.fail("layer_types", `a list of ${numLayers} "sliding_attention" or "full_attention"`);
    }
    return listed as LayerType[];
  }
  // Gemma 3: every sliding_window_pattern-th layer is global; Gemma 2: every second one.
  const pattern = gemma3 ? read.positiveInt("sliding_window_pattern", 6) : 2;
  return Array.from({ length: numLayers }, (_, i) =>
    (i + 1) % pattern === 0 ? "full_attention" : "sliding_attention",
  );
}

/** A soft-capping value: a positive number, off when null, the family's default when absent. */
function parseSoftcapping(fields: Json, file: string, field: string, fallback: number | null): number | null {
  if (fields[field] === null) return null;
  if (fields[field] === undefined) return fallback;
  return fieldReader(fields, file).positiveNumber(field);
}

export function gemmaFields(fields: Json, file: string, config: ModelConfig): GemmaFields {
  const read = fieldReader(fields, file);
  const gemma3 = config.architecture === "Gemma3ForCausalLM";
  if (!read.present("head_dim")) throw new ModelLoadError(file, `missing required field "head_dim"`);
  // transformers' Gemma 2 and 3 read hidden_activation only (hidden_act is Gemma 1's).
  const activation = read.string("hidden_activation", "gelu_pytorch_tanh");
  if (activation !== "gelu_pytorch_tanh") {
    throw new ModelLoadError(
      file,
      `unsupported "hidden_activation" ${JSON.stringify(activation)} for ${config.architecture} (supported: gelu_pytorch_tanh)`,
    );
  }
  if (read.boolean("use_bidirectional_attention", false)) {
    throw new ModelLoadError(file, `"use_bidirectional_attention" (an embedding model's attention) is not supported`);
  }
  return {
    qkNorm: gemma3,
    slidingWindow: read.positiveInt("sliding_window"),
    layerTypes: parseLayerTypes(fields, file, gemma3, config.numLayers),
    localRopeTheta: gemma3 ? read.positiveNumber("rope_local_base_freq", 10000) : null,
    hiddenAct: "gelu_pytorch_tanh",
    attentionScale: read.positiveNumber("query_pre_attn_scalar") ** -0.5,
    attnLogitSoftcapping: parseSoftcapping(fields, file, "attn_logit_softcapping", gemma3 ? null : 50),
    finalLogitSoftcapping: parseSoftcapping(fields, file, "final_logit_softcapping", gemma3 ? null : 30),
    embeddingScale: Math.sqrt(config.hiddenSize),
    normWeightsFromOne: true,
    sandwichNorms: true,
  };
}
