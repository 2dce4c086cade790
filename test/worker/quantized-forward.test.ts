// Models quantized on load (--quantization) through the paged, batched native forward: for each
// format, the logits equal the reference forward's on the dequantized weights (the quantization
// is the only change, and it is exactly the reference's; decode steps add the rounding of their
// int8 activations), and, against the unquantized model, the KL divergence and top-1
// agreement are printed, as llama.cpp's perplexity tool reports them.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Backend } from "../../src/backend/backend.ts";
import { ALL_QUANT_FORMATS, type QuantFormat } from "../../src/backend/weight-format.ts";
import { tensorNames } from "../../src/model/weight-names.ts";
import { dequantize, quantize } from "../../src/reference/quant.ts";
import {
  type Comparison,
  compareWithReference,
  expectQuantizedRowsClose,
  QUANTIZABLE_SHAPE,
} from "../helpers/forward-schedule.ts";
import { type RandomModel, writeRandomModel } from "../helpers/random-model.ts";

let backend: Backend;
let model: RandomModel;
beforeAll(async () => {
  backend = await Backend.open({ device: "cpu" });
  // Every matrix's input size is whole blocks of 256, so each is quantized (none falls back).
  model = await writeRandomModel({
    architecture: "Qwen3ForCausalLM",
    ...QUANTIZABLE_SHAPE,
    seed: 17,
  });
});
afterAll(() => backend.close());

/** A model's weights with every matrix as it reads back after quantizing to `format` (the
 * experts' too; their router stays as it is). */
function quantizedWeights(format: QuantFormat, of: RandomModel = model): Map<string, Float32Array> {
  const names = tensorNames(of.config);
  const matrices = [
    names.lmHead,
    ...names.layers.flatMap((l) => [
      ...l.qkv,
      l.o,
      ...l.gateUp,
      ...(l.down ? [l.down] : []),
      ...(l.experts ? [...l.experts.gateUp, ...l.experts.down] : []),
      ...(l.experts?.sharedExpert ? [...l.experts.sharedExpert.gateUp, l.experts.sharedExpert.down] : []),
    ]),
  ];
  const weights = new Map(of.weights);
  for (const name of matrices) weights.set(name, dequantize(format, quantize(format, of.weights.get(name)!)));
  return weights;
}

function logSoftmax(logits: Float32Array): Float64Array {
  const max = Math.max(...logits);
  const sum = logits.reduce((s, x) => s + Math.exp(x - max), 0);
  return Float64Array.from(logits, (x) => x - max - Math.log(sum));
}

const argmax = (values: ArrayLike<number>) => {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
};

/** Mean KL(unquantized || quantized) over the rows, and how often both pick the same top token. */
function agreement(rows: Comparison["rows"]): { kl: number; top1: number } {
  let kl = 0;
  let same = 0;
  for (const { actual, expected } of rows) {
    const p = logSoftmax(expected);
    const q = logSoftmax(actual);
    for (let v = 0; v < p.length; v++) kl += Math.exp(p[v]!) * (p[v]! - q[v]!);
    if (argmax(actual) === argmax(expected)) same++;
  }
  return { kl: kl / rows.length, top1: same / rows.length };
}

describe.each(ALL_QUANT_FORMATS)("--quantization %s", (format) => {
  test("the logits are the reference forward's on the dequantized weights", async () => {
    const { rows, logitScale } = await compareWithReference(
      backend,
      model,
      16,
      "f32",
      { quantization: format },
      quantizedWeights(format),
    );
    expect(logitScale).toBeGreaterThan(0.5);
    expectQuantizedRowsClose(rows, logitScale);
  });

  test("against the unquantized model: KL divergence and top-1 agreement", async () => {
    const { rows } = await compareWithReference(backend, model, 32, "f32", { quantization: format });
    const { kl, top1 } = agreement(rows);
    console.log(`${format}: KL divergence ${kl.toExponential(2)}, top-1 agreement ${(100 * top1).toFixed(1)}%`);
    // Bounds a broken layout or scale would blow through; each bit fewer costs about 4x the KL.
    const bounds = {
      q8_0: [5e-3, 0.95],
      q6_k: [5e-2, 0.85],
      q5_k: [0.2, 0.75],
      q5_1: [0.2, 0.75],
      q5_0: [0.2, 0.75],
      q4_k: [1, 0.6],
      q4_1: [1, 0.6],
      q4_0: [1, 0.6],
    };
    expect(kl).toBeLessThan(bounds[format][0]!);
    expect(top1).toBeGreaterThan(bounds[format][1]!);
  });
});

// Each expert's matrix is packed on its own. Every expert is chosen for every token: quantized
// activations move the router's logits a little, which would flip a top-k choice where two logits
// nearly tie, and the comparison would measure that choice instead of the quantized blocks. On
// CUDA the f32 model's experts run the gather GEMV; the bf16 one's prefill steps (8 or more
// tokens, each at every expert) run the tensor cores' tile over each expert's tokens.
describe("a mixture of experts quantized on load", () => {
  for (const [format, dtype] of [
    ["q8_0", "float32"],
    ["q4_k", "float32"],
    ["q4_k", "bfloat16"],
  ] as const)
    test(`--quantization ${format} of a ${dtype} model: the logits are the reference forward's on the dequantized weights`, async () => {
      const moe = await writeRandomModel({
        architecture: "Qwen3MoeForCausalLM",
        ...QUANTIZABLE_SHAPE,
        dtype,
        experts: { numExperts: 4, topK: 4, width: 256, mlpOnlyLayers: [0] },
        seed: 19,
      });
      const { rows, logitScale } = await compareWithReference(
        backend,
        moe,
        16,
        dtype === "bfloat16" ? "bf16" : "f32",
        { quantization: format },
        quantizedWeights(format, moe),
      );
      expect(logitScale).toBeGreaterThan(0.5);
      // With the bf16 model, the cache's and (on CUDA) the activations' bf16 rounding too.
      expectQuantizedRowsClose(rows, logitScale);
    });
});
