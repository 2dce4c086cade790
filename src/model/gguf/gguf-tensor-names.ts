// llama.cpp's tensor names (blk.N.attn_q.weight, ...) and the Hugging Face names the weight loader
// asks for (model.layers.N.self_attn.q_proj.weight, ...), for the Llama-family architectures.

const GLOBAL_NAMES: Record<string, string> = {
  "token_embd.weight": "model.embed_tokens.weight",
  "output_norm.weight": "model.norm.weight",
  "output.weight": "lm_head.weight",
};

const LAYER_NAMES: Record<string, string> = {
  "attn_norm.weight": "input_layernorm.weight",
  "attn_q.weight": "self_attn.q_proj.weight",
  "attn_k.weight": "self_attn.k_proj.weight",
  "attn_v.weight": "self_attn.v_proj.weight",
  "attn_q.bias": "self_attn.q_proj.bias",
  "attn_k.bias": "self_attn.k_proj.bias",
  "attn_v.bias": "self_attn.v_proj.bias",
  "attn_q_norm.weight": "self_attn.q_norm.weight",
  "attn_k_norm.weight": "self_attn.k_norm.weight",
  "attn_output.weight": "self_attn.o_proj.weight",
  "ffn_norm.weight": "post_attention_layernorm.weight",
  "ffn_gate.weight": "mlp.gate_proj.weight",
  "ffn_up.weight": "mlp.up_proj.weight",
  "ffn_down.weight": "mlp.down_proj.weight",
};

/** The Hugging Face name of a llama.cpp tensor, or null for one the engine has no use for. */
export function huggingFaceNameOf(ggufName: string): string | null {
  const global = GLOBAL_NAMES[ggufName];
  if (global !== undefined) return global;
  const match = /^blk\.(\d+)\.(.+)$/.exec(ggufName);
  const suffix = match ? LAYER_NAMES[match[2]!] : undefined;
  return suffix === undefined ? null : `model.layers.${match![1]}.${suffix}`;
}
