// The text part of a Gemma 3 checkpoint with its vision tower (Gemma3ForConditionalGeneration,
// e.g. google/gemma-3-4b-it): its config.json nests the language model's fields in text_config,
// writing only those that differ from transformers' Gemma3TextConfig defaults, and its tensors
// sit under "language_model." beside the vision tower's, which the engine leaves unread (it
// serves text only).
import type { Json } from "./config-fields.ts";
import { ModelLoadError } from "./errors.ts";

export const GEMMA3_MULTIMODAL = "Gemma3ForConditionalGeneration";

/** Where the language model's tensors are in such a checkpoint. */
export const GEMMA3_TEXT_TENSOR_PREFIX = "language_model.";

/** transformers' Gemma3TextConfig defaults: what a text_config leaves unsaid. */
const GEMMA3_TEXT_DEFAULTS: Json = {
  vocab_size: 262208,
  hidden_size: 2304,
  intermediate_size: 9216,
  num_hidden_layers: 26,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  head_dim: 256,
  hidden_activation: "gelu_pytorch_tanh",
  max_position_embeddings: 131072,
  rms_norm_eps: 1e-6,
  bos_token_id: 2,
  eos_token_id: 1,
  tie_word_embeddings: true,
  rope_theta: 1000000,
  attention_bias: false,
  query_pre_attn_scalar: 256,
  sliding_window: 4096,
  final_logit_softcapping: null,
  attn_logit_softcapping: null,
  rope_scaling: null,
  rope_local_base_freq: 10000,
  sliding_window_pattern: 6,
};

/**
 * A Gemma3ForCausalLM config.json equivalent to the multimodal one's text part: the defaults,
 * then text_config, then the top level's dtype and special tokens (which describe the whole
 * checkpoint).
 */
export function gemma3TextConfigOf(json: Json, file: string): Json {
  const text = json.text_config;
  if (typeof text !== "object" || text === null || Array.isArray(text)) {
    throw new ModelLoadError(file, `${GEMMA3_MULTIMODAL} needs a "text_config" object`);
  }
  const topLevel = Object.fromEntries(
    ["torch_dtype", "dtype", "bos_token_id", "eos_token_id"].filter((k) => json[k] != null).map((k) => [k, json[k]]),
  );
  return { ...GEMMA3_TEXT_DEFAULTS, ...(text as Json), ...topLevel, architectures: ["Gemma3ForCausalLM"] };
}
