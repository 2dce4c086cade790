// GGUF files with quantized tensors, as a Q4_K_M file mixes them (Q4_K attention and gate/up,
// Q5_K output projection, Q6_K down projection and LM head, a Q8_0 embedding): the engine's
// logits equal the reference forward's on the dequantized weights, with blocks written by this
// project's quantizer and, where llama.cpp's library is installed, by llama.cpp's own; and a
// mixture of experts whose stacked experts are quantized so.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Backend } from "../../src/backend/backend.ts";
import { QUANT_FORMATS, type QuantFormat } from "../../src/backend/weight-format.ts";
import { loadModelWeights, resolveModel } from "../../src/model/load-model.ts";
import { dequantize, quantize } from "../../src/reference/quant.ts";
import { compareWithReference, expectQuantizedRowsClose, QUANTIZABLE_SHAPE } from "../helpers/forward-schedule.ts";
import { type GgufQuantizer, writeGgufModel } from "../helpers/gguf-model-writer.ts";
import { ggmlQuantize, missingReason } from "../helpers/llama-cpp.ts";
import { type RandomModel, writeRandomModel } from "../helpers/random-model.ts";

const GGML_TYPE_IDS: Record<QuantFormat, number> = {
  q4_0: 2,
  q4_1: 3,
  q5_0: 6,
  q5_1: 7,
  q8_0: 8,
  q4_k: 12,
  q5_k: 13,
  q6_k: 14,
};

/** Q4_K_M's choice of format per matrix. */
function formatOf(name: string): QuantFormat {
  if (name === "model.embed_tokens.weight") return "q8_0";
  if (name === "lm_head.weight" || name.endsWith("down_proj.weight")) return "q6_k";
  if (name.endsWith("o_proj.weight")) return "q5_k";
  return "q4_k";
}

type Quantize = (format: QuantFormat, values: Float32Array) => Uint8Array;
const ours: Quantize = quantize;
const llamaCpps: Quantize = (format, values) =>
  ggmlQuantize(format, values, QUANT_FORMATS[format].blockBytes, QUANT_FORMATS[format].blockElements);

let backend: Backend;
let model: RandomModel;
beforeAll(async () => {
  backend = await Backend.open({ device: "cpu" });
  // Llama: its q/k rows are permuted in the file, quantized blocks and all.
  model = await writeRandomModel({
    architecture: "LlamaForCausalLM",
    ...QUANTIZABLE_SHAPE,
    seed: 23,
  });
});
afterAll(() => backend.close());

const quantizers: [string, Quantize, string | null][] = [
  ["this project's quantizer", ours, null],
  ["llama.cpp's quantizer", llamaCpps, missingReason],
];

describe.each(quantizers)("blocks written by %s", (_, quantizeWith, skipReason) => {
  test.skipIf(skipReason !== null)("the logits are the reference forward's on the dequantized weights", async () => {
    const quantizer: GgufQuantizer = (name, rows) => {
      const format = formatOf(name);
      return { typeId: GGML_TYPE_IDS[format], data: quantizeWith(format, rows) };
    };
    const file = await writeGgufModel(model, { type: "F32", file: `${model.dir}/q4_k_m.gguf`, quantize: quantizer });
    // Rows are quantized one by one, so the permuted file dequantizes to the permuted dequantization.
    const stored = new Map(model.weights);
    for (const [name, values] of model.weights)
      if (name.endsWith(".weight") && values.length > model.config.hiddenSize)
        stored.set(name, dequantize(formatOf(name), quantizeWith(formatOf(name), values)));
    // Norms and the embedding in f32 (a quantized file's default is f16), so only the blocks differ.
    const options = { dtype: "float32" } as const;
    const { rows, logitScale } = await compareWithReference(
      backend,
      { ...model, dir: file },
      16,
      "f32",
      options,
      stored,
    );
    expect(logitScale).toBeGreaterThan(0.5);
    expectQuantizedRowsClose(rows, logitScale);
  });
});

test("each matrix keeps its file's format; a fused matrix whose parts differ takes the most precise", async () => {
  const mixed: GgufQuantizer = (name, rows) => {
    // attn_v in Q6_K as Q4_K_M files have it in some layers: q, k and v fuse into one Q6_K matrix.
    const format = name.endsWith("v_proj.weight") ? "q6_k" : formatOf(name);
    return { typeId: GGML_TYPE_IDS[format], data: quantize(format, rows) };
  };
  const file = await writeGgufModel(model, { type: "F32", file: `${model.dir}/mixed.gguf`, quantize: mixed });
  const loaded = loadModelWeights(backend, await resolveModel(file));
  try {
    const layer = loaded.weights.layers[0]!;
    expect([layer.qkv.format, layer.o.format, layer.gateUp!.format, layer.down!.format]).toEqual([
      "q6_k",
      "q5_k",
      "q4_k",
      "q6_k",
    ]);
    expect(loaded.weights.lmHead.format).toBe("q6_k");
  } finally {
    loaded.weights.free();
  }
});

// Every expert chosen for every token: the quantized activations move the router's logits a
// little, which would change a top-k choice where two logits nearly tie, and the comparison with
// the reference would then measure that discrete choice instead of the quantized blocks.
test("a mixture of experts in Q4_K_M (stacked quantized experts, the shared expert's too; the router kept in F32): the logits are the reference forward's on the dequantized weights", async () => {
  const moe = await writeRandomModel({
    architecture: "Qwen2MoeForCausalLM",
    ...QUANTIZABLE_SHAPE,
    attentionBias: true,
    experts: { numExperts: 4, topK: 4, width: 256, normTopkProb: false, sharedWidth: 256 },
    seed: 29,
  });
  // llama.cpp's quantizer leaves the router (ffn_gate_inp) unquantized.
  const isRouter = (name: string) => name.endsWith(".mlp.gate.weight");
  const quantizer: GgufQuantizer = (name, rows) =>
    isRouter(name) ? null : { typeId: GGML_TYPE_IDS[formatOf(name)], data: quantize(formatOf(name), rows) };
  const file = await writeGgufModel(moe, { type: "F32", file: `${moe.dir}/q4_k_m.gguf`, quantize: quantizer });
  const stored = new Map(moe.weights);
  for (const [name, values] of moe.weights)
    if (name.endsWith(".weight") && values.length > moe.config.hiddenSize && !isRouter(name))
      stored.set(name, dequantize(formatOf(name), quantize(formatOf(name), values)));
  const { rows, logitScale } = await compareWithReference(
    backend,
    { ...moe, dir: file },
    16,
    "f32",
    { dtype: "float32" },
    stored,
  );
  expect(logitScale).toBeGreaterThan(0.5);
  expectQuantizedRowsClose(rows, logitScale);
});

if (missingReason !== null) console.warn(`skipped the llama.cpp-quantized file: ${missingReason}`);
