// The model whose shapes the kernel sweeps use: Llama-3.1-8B by default (the model the GPU
// figures are recorded on), or any model's config.json through --model, which is also how the
// tests run the sweeps on tiny shapes.
import { loadModelConfig } from "../../model/config.ts";

export interface KernelModel {
  name: string;
  hiddenSize: number;
  intermediateSize: number;
  numQHeads: number;
  numKvHeads: number;
  headDim: number;
}

/** meta-llama/Llama-3.1-8B-Instruct, as bench/models/llama-3.1-8b/config.json. */
export const LLAMA_3_1_8B: KernelModel = {
  name: "llama-3.1-8b",
  hiddenSize: 4096,
  intermediateSize: 14336,
  numQHeads: 32,
  numKvHeads: 8,
  headDim: 128,
};

export async function kernelModel(dir: string | undefined): Promise<KernelModel> {
  if (dir === undefined) return LLAMA_3_1_8B;
  const c = await loadModelConfig(dir);
  const name = dir.replace(/\/+$/, "").split("/").pop()!;
  return {
    name,
    hiddenSize: c.hiddenSize,
    intermediateSize: c.intermediateSize,
    numQHeads: c.numHeads,
    numKvHeads: c.numKvHeads,
    headDim: c.headDim,
  };
}

export interface MatmulLayer {
  layer: "qkv" | "o" | "gate_up" | "down";
  /** Output features (rows of the [n, k] weight). */
  n: number;
  /** Input features. */
  k: number;
}

/** A decoder layer's four linear layers, with q/k/v and gate/up fused as the engine runs them. */
export function matmulLayers(m: KernelModel): MatmulLayer[] {
  const qDim = m.numQHeads * m.headDim;
  return [
    { layer: "qkv", n: qDim + 2 * m.numKvHeads * m.headDim, k: m.hiddenSize },
    { layer: "o", n: m.hiddenSize, k: qDim },
    { layer: "gate_up", n: 2 * m.intermediateSize, k: m.hiddenSize },
    { layer: "down", n: m.hiddenSize, k: m.intermediateSize },
  ];
}
