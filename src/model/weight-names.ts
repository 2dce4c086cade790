// Hugging Face tensor names of a Llama-family checkpoint, and how vllm-ts fuses them: q/k/v into
// one QKV projection and gate/up into one gate_up projection, so each layer reads its input once.
import type { ModelConfig } from "./config.ts";

export interface LayerTensorNames {
  inputNorm: string;
  q: string;
  k: string;
  v: string;
  qBias: string | null;
  kBias: string | null;
  vBias: string | null;
  qNorm: string | null;
  kNorm: string | null;
  o: string;
  postNorm: string;
  gate: string;
  up: string;
  down: string;
}

export interface ModelTensorNames {
  embed: string;
  layers: LayerTensorNames[];
  finalNorm: string;
  /** The embedding's name when the LM head is tied to it. */
  lmHead: string;
}

export function tensorNames(config: ModelConfig): ModelTensorNames {
  const layers: LayerTensorNames[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}`;
    const bias = (name: string) => (config.attentionBias ? `${p}.self_attn.${name}_proj.bias` : null);
    layers.push({
      inputNorm: `${p}.input_layernorm.weight`,
      q: `${p}.self_attn.q_proj.weight`,
      k: `${p}.self_attn.k_proj.weight`,
      v: `${p}.self_attn.v_proj.weight`,
      qBias: bias("q"),
      kBias: bias("k"),
      vBias: bias("v"),
      qNorm: config.qkNorm ? `${p}.self_attn.q_norm.weight` : null,
      kNorm: config.qkNorm ? `${p}.self_attn.k_norm.weight` : null,
      o: `${p}.self_attn.o_proj.weight`,
      postNorm: `${p}.post_attention_layernorm.weight`,
      gate: `${p}.mlp.gate_proj.weight`,
      up: `${p}.mlp.up_proj.weight`,
      down: `${p}.mlp.down_proj.weight`,
    });
  }
  return {
    embed: "model.embed_tokens.weight",
    layers,
    finalNorm: "model.norm.weight",
    lmHead: config.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight",
  };
}

/** The expected shape of every tensor, to reject a checkpoint that does not match its config. */
export function expectedShapes(config: ModelConfig): Map<string, number[]> {
  const names = tensorNames(config);
  const { hiddenSize: h, intermediateSize: inter, headDim: d, numHeads: nq, numKvHeads: nkv } = config;
  const shapes = new Map<string, number[]>();
  shapes.set(names.embed, [config.vocabSize, h]);
  shapes.set(names.finalNorm, [h]);
  shapes.set(names.lmHead, [config.vocabSize, h]);
  for (const l of names.layers) {
    shapes.set(l.inputNorm, [h]);
    shapes.set(l.q, [nq * d, h]);
    shapes.set(l.k, [nkv * d, h]);
    shapes.set(l.v, [nkv * d, h]);
    if (l.qBias) shapes.set(l.qBias, [nq * d]);
    if (l.kBias) shapes.set(l.kBias, [nkv * d]);
    if (l.vBias) shapes.set(l.vBias, [nkv * d]);
    if (l.qNorm) shapes.set(l.qNorm, [d]);
    if (l.kNorm) shapes.set(l.kNorm, [d]);
    shapes.set(l.o, [h, nq * d]);
    shapes.set(l.postNorm, [h]);
    shapes.set(l.gate, [inter, h]);
    shapes.set(l.up, [inter, h]);
    shapes.set(l.down, [h, inter]);
  }
  return shapes;
}
