// llama.cpp's tensor names (blk.N.attn_q.weight, ...) and the Hugging Face names the weight loader
// asks for (model.layers.N.self_attn.q_proj.weight, ...), for the Llama-family architectures and
// their mixtures of experts. A mixture's experts are stacked in one llama.cpp tensor per projection
// (blk.N.ffn_gate_exps.weight: [experts, rows, columns]), which holds one Hugging Face tensor per
// expert.

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
  // Qwen2-MoE's shared expert and its gate.
  "ffn_gate_shexp.weight": "mlp.shared_expert.gate_proj.weight",
  "ffn_up_shexp.weight": "mlp.shared_expert.up_proj.weight",
  "ffn_down_shexp.weight": "mlp.shared_expert.down_proj.weight",
  "ffn_gate_inp_shexp.weight": "mlp.shared_expert_gate.weight",
};

/** How the file's mixture names its experts in Hugging Face's checkpoints. */
export interface ExpertNaming {
  numExperts: number;
  /** Mixtral's block_sparse_moe.experts.E.w1/w3/w2; otherwise Qwen's mlp.experts.E.gate/up/down_proj. */
  mixtral: boolean;
}

/** A Hugging Face tensor in the file: a whole llama.cpp tensor, or one expert's matrix of a stacked one. */
export interface GgufSource {
  ggufName: string;
  /** The expert's index in a stacked tensor; null for a whole tensor. */
  expert: number | null;
}

const PROJECTIONS = { gate: ["gate_proj", "w1"], up: ["up_proj", "w3"], down: ["down_proj", "w2"] } as const;

/**
 * The Hugging Face tensors a llama.cpp tensor holds: one, one per expert for a stacked experts'
 * tensor, or none for one the engine has no use for.
 */
export function huggingFaceTensorsOf(ggufName: string, experts: ExpertNaming | null): [string, GgufSource][] {
  const global = GLOBAL_NAMES[ggufName];
  if (global !== undefined) return [[global, { ggufName, expert: null }]];
  const match = /^blk\.(\d+)\.(.+)$/.exec(ggufName);
  if (!match) return [];
  const layer = `model.layers.${match[1]}`;
  const suffix = match[2]!;
  const block = experts?.mixtral ? `${layer}.block_sparse_moe` : `${layer}.mlp`;
  if (suffix === "ffn_gate_inp.weight" && experts) return [[`${block}.gate.weight`, { ggufName, expert: null }]];
  const stacked = /^ffn_(gate|up|down)_exps\.weight$/.exec(suffix);
  if (stacked && experts) {
    const projection = PROJECTIONS[stacked[1] as keyof typeof PROJECTIONS][experts.mixtral ? 1 : 0];
    return Array.from({ length: experts.numExperts }, (_, expert) => [
      `${block}.experts.${expert}.${projection}.weight`,
      { ggufName, expert },
    ]);
  }
  const name = LAYER_NAMES[suffix];
  return name === undefined ? [] : [[`${layer}.${name}`, { ggufName, expert: null }]];
}

/** A Mixtral file from before llama.cpp stacked the experts: blk.N.ffn_gate.E.weight, one per expert. */
export function isUnstackedExpertTensor(ggufName: string): boolean {
  return /^blk\.\d+\.ffn_(gate|up|down)\.\d+\.weight$/.test(ggufName);
}
