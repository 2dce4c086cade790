// Hugging Face tensor names of a Llama-family checkpoint (Gemma's and Phi-3's included), and how
// vllm-ts fuses them: q/k/v into one QKV projection and gate/up into one gate_up projection, so
// each layer reads its input once. Phi-3 ships both already fused, in the same row order.
import type { ModelConfig } from "./config.ts";

export interface LayerTensorNames {
  inputNorm: string;
  /** The tensors whose rows, stacked in this order, are the fused QKV matrix (q, k, v). */
  qkv: string[];
  /** The biases of those rows, in the same order; empty when the projections have none. */
  qkvBias: string[];
  qNorm: string | null;
  kNorm: string | null;
  o: string;
  /** Gemma's norm of the attention output, before its residual add. */
  attentionOutputNorm: string | null;
  /** The MLP's input norm: Llama's post_attention_layernorm, Gemma's pre_feedforward_layernorm. */
  mlpInputNorm: string;
  /** Gemma's norm of the MLP output, before its residual add. */
  mlpOutputNorm: string | null;
  /** The tensors whose rows, stacked in this order, are the fused gate_up matrix (gate, up);
   * empty in a sparse layer. */
  gateUp: string[];
  /** The MLP's down projection; null in a sparse layer. */
  down: string | null;
  /** A sparse layer's router and experts; null in a dense one. */
  experts: ExpertTensorNames | null;
}

/** A mixture-of-experts layer's tensors, each expert's stacked in expert order. */
export interface ExpertTensorNames {
  /** [num_experts, hidden]: the router's logits per expert. */
  router: string;
  /** Expert 0's gate and up, expert 1's, ...: the stacked [num_experts, 2 I, hidden] matrix. */
  gateUp: string[];
  /** Each expert's down projection: the stacked [num_experts, hidden, I] matrix. */
  down: string[];
  /** Qwen2-MoE's shared expert; null in other families. */
  sharedExpert: SharedExpertTensorNames | null;
}

/** Qwen2-MoE's shared expert: a dense MLP of its own width, and its gate's [1, hidden] row. */
export interface SharedExpertTensorNames {
  /** Gate, then up: the fused [2 S, hidden] matrix. */
  gateUp: string[];
  /** [hidden, S]. */
  down: string;
  /** [1, hidden]: the logit of sigmoid(gate · x), the shared expert's weight per token. */
  gate: string;
}

/**
 * Hugging Face's names of a sparse layer's tensors: Qwen2/3-MoE's mlp.experts (and Qwen2-MoE's
 * mlp.shared_expert), Mixtral's block_sparse_moe.
 */
function expertTensorNames(config: ModelConfig, layerPrefix: string): ExpertTensorNames {
  const experts = Array.from({ length: config.moe!.numExperts }, (_, e) => e);
  if (config.architecture === "MixtralForCausalLM") {
    const p = `${layerPrefix}.block_sparse_moe`;
    return {
      router: `${p}.gate.weight`,
      gateUp: experts.flatMap((e) => [`${p}.experts.${e}.w1.weight`, `${p}.experts.${e}.w3.weight`]),
      down: experts.map((e) => `${p}.experts.${e}.w2.weight`),
      sharedExpert: null,
    };
  }
  const p = `${layerPrefix}.mlp`;
  return {
    router: `${p}.gate.weight`,
    gateUp: experts.flatMap((e) => [`${p}.experts.${e}.gate_proj.weight`, `${p}.experts.${e}.up_proj.weight`]),
    down: experts.map((e) => `${p}.experts.${e}.down_proj.weight`),
    sharedExpert:
      config.moe!.sharedExpertIntermediateSize === null
        ? null
        : {
            gateUp: [`${p}.shared_expert.gate_proj.weight`, `${p}.shared_expert.up_proj.weight`],
            down: `${p}.shared_expert.down_proj.weight`,
            gate: `${p}.shared_expert_gate.weight`,
          },
  };
}

export interface ModelTensorNames {
  embed: string;
  layers: LayerTensorNames[];
  finalNorm: string;
  /** The embedding's name when the LM head is tied to it. */
  lmHead: string;
}

export function tensorNames(config: ModelConfig): ModelTensorNames {
  const fusedInCheckpoint = config.architecture === "Phi3ForCausalLM";
  const model = `${config.tensorPrefix}model`;
  const layers: LayerTensorNames[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    const p = `${model}.layers.${i}`;
    const projections = (names: string[], kind: "weight" | "bias") =>
      names.map((name) => `${p}.self_attn.${name}_proj.${kind}`);
    const attentionParts = fusedInCheckpoint ? ["qkv"] : ["q", "k", "v"];
    layers.push({
      inputNorm: `${p}.input_layernorm.weight`,
      qkv: projections(attentionParts, "weight"),
      qkvBias: config.attentionBias ? projections(attentionParts, "bias") : [],
      qNorm: config.qkNorm ? `${p}.self_attn.q_norm.weight` : null,
      kNorm: config.qkNorm ? `${p}.self_attn.k_norm.weight` : null,
      o: `${p}.self_attn.o_proj.weight`,
      attentionOutputNorm: config.sandwichNorms ? `${p}.post_attention_layernorm.weight` : null,
      mlpInputNorm: config.sandwichNorms
        ? `${p}.pre_feedforward_layernorm.weight`
        : `${p}.post_attention_layernorm.weight`,
      mlpOutputNorm: config.sandwichNorms ? `${p}.post_feedforward_layernorm.weight` : null,
      ...(config.moe?.sparseLayers[i]
        ? { gateUp: [], down: null, experts: expertTensorNames(config, p) }
        : {
            gateUp: fusedInCheckpoint
              ? [`${p}.mlp.gate_up_proj.weight`]
              : [`${p}.mlp.gate_proj.weight`, `${p}.mlp.up_proj.weight`],
            down: `${p}.mlp.down_proj.weight`,
            experts: null,
          }),
    });
  }
  return {
    embed: `${model}.embed_tokens.weight`,
    layers,
    finalNorm: `${model}.norm.weight`,
    lmHead: config.tieWordEmbeddings ? `${model}.embed_tokens.weight` : `${config.tensorPrefix}lm_head.weight`,
  };
}

/** The expected shape of every tensor, to reject a checkpoint that does not match its config. */
export function expectedShapes(config: ModelConfig): Map<string, number[]> {
  const names = tensorNames(config);
  const { hiddenSize: h, intermediateSize: inter, headDim: d, numHeads: nq, numKvHeads: nkv } = config;
  // Rows of each part of the fused matrices, by the number of parts the checkpoint splits them in.
  const qkvRows = (parts: number) => (parts === 1 ? [(nq + 2 * nkv) * d] : [nq * d, nkv * d, nkv * d]);
  const gateUpRows = (parts: number) => (parts === 1 ? [2 * inter] : [inter, inter]);
  const shapes = new Map<string, number[]>();
  shapes.set(names.embed, [config.vocabSize, h]);
  shapes.set(names.finalNorm, [h]);
  shapes.set(names.lmHead, [config.vocabSize, h]);
  for (const l of names.layers) {
    shapes.set(l.inputNorm, [h]);
    const rows = qkvRows(l.qkv.length);
    for (const [i, name] of l.qkv.entries()) shapes.set(name, [rows[i]!, h]);
    for (const [i, name] of l.qkvBias.entries()) shapes.set(name, [rows[i]!]);
    if (l.qNorm) shapes.set(l.qNorm, [d]);
    if (l.kNorm) shapes.set(l.kNorm, [d]);
    shapes.set(l.o, [h, nq * d]);
    for (const norm of [l.attentionOutputNorm, l.mlpInputNorm, l.mlpOutputNorm]) if (norm) shapes.set(norm, [h]);
    const gateUp = gateUpRows(l.gateUp.length);
    for (const [i, name] of l.gateUp.entries()) shapes.set(name, [gateUp[i]!, h]);
    if (l.down) shapes.set(l.down, [h, inter]);
    if (l.experts) {
      const { numExperts, expertIntermediateSize: width } = config.moe!;
      shapes.set(l.experts.router, [numExperts, h]);
      for (const name of l.experts.gateUp) shapes.set(name, [width, h]);
      for (const name of l.experts.down) shapes.set(name, [h, width]);
      const shared = l.experts.sharedExpert;
      if (shared) {
        const sharedWidth = config.moe!.sharedExpertIntermediateSize!;
        for (const name of shared.gateUp) shapes.set(name, [sharedWidth, h]);
        shapes.set(shared.down, [h, sharedWidth]);
        shapes.set(shared.gate, [1, h]);
      }
    }
  }
  return shapes;
}
