// Forward-pass speed on a real small model's shape with random weights (vLLM's
// `--load-format dummy`): prefill tokens/s for a 512-token prompt and decode tokens/s at batch 1,
// 8, 32 and 64. Efficiency is reported against baselines measured in the same run: the largest
// matmul throughput the backend reaches on this machine (a compute-bound square-ish shape) and
// the device's copy bandwidth (a large device-to-device memcpy, bytes read + written). A GGUF file
// as --model gives its own weights instead (the llama.cpp side-by-side benchmark, bench/peer/).
// Decode steps replay captured graphs as the engine's do, or run op by op with --enforce-eager.
// --num-layers keeps the first N layers of a large model; --dense-twin runs a mixture of experts'
// dense twin instead: the same attention and an MLP as wide as the experts a token uses, so the
// same active parameters per token.
//   bun bench/forward.ts [--model bench/models/qwen2.5-0.5b | FILE.gguf] [--quantization q8_0|q4_0|q4_k|q5_k|q6_k]
//                        [--output-json FILE] [--threads N] [--batch-sizes 1,8,32,64] [--enforce-eager]
//                        [--num-layers N] [--dense-twin]
import { parseArgs } from "node:util";
import { activationDtype } from "../src/backend/activation-dtype.ts";
import { Backend } from "../src/backend/backend.ts";
import { dtypeBytes } from "../src/backend/dtype.ts";
import { ALL_QUANT_FORMATS, type QuantFormat } from "../src/backend/weight-format.ts";
import { type Architecture, loadModelConfig, type ModelConfig } from "../src/model/config.ts";
import { ggufModel, ggufTensorStore } from "../src/model/gguf/gguf-model.ts";
import { dummyWeights, loadWeightsFromStore, type ModelWeights } from "../src/model/weights.ts";
import { DecodeGraphs } from "../src/worker/decode-graphs.ts";
import { type DeviceSamplingParams, type ForwardBatch, ModelForward } from "../src/worker/forward.ts";
import { KvCacheTensors } from "../src/worker/kv-cache-tensors.ts";

const { values: options } = parseArgs({
  options: {
    model: { type: "string", default: "bench/models/qwen2.5-0.5b" },
    "output-json": { type: "string" },
    threads: { type: "string", default: "0" },
    quantization: { type: "string" },
    "prompt-len": { type: "string", default: "512" },
    "decode-context": { type: "string", default: "256" },
    "decode-steps": { type: "string", default: "8" },
    "batch-sizes": { type: "string", default: "1,8,32,64" },
    "enforce-eager": { type: "boolean", default: false },
    "num-layers": { type: "string" },
    "dense-twin": { type: "boolean", default: false },
  },
});

const BLOCK_SIZE = 16;
const promptLength = Number(options["prompt-len"]);
const decodeContext = Number(options["decode-context"]);
const decodeSteps = Number(options["decode-steps"]);
const batchSizes = options["batch-sizes"]!.split(",").map(Number);
if (batchSizes.some((size) => !Number.isInteger(size) || size < 1))
  throw new Error("--batch-sizes must be positive integers separated by commas");

async function seconds(run: () => unknown, repeats: number): Promise<number> {
  await run(); // warm-up: first-touch of the workspace, thread pool start, graph capture
  const start = performance.now();
  for (let i = 0; i < repeats; i++) await run();
  return (performance.now() - start) / 1000 / repeats;
}

/** Multiply-accumulate count of one token through every linear layer except the LM head (a
 * sparse layer's: its router and the experts the token goes to). */
function linearMacsPerToken(c: ModelConfig): number {
  const qkv = c.hiddenSize * (c.numHeads + 2 * c.numKvHeads) * c.headDim;
  const o = c.numHeads * c.headDim * c.hiddenSize;
  let macs = 0;
  for (let layer = 0; layer < c.numLayers; layer++) {
    const moe = c.moe?.sparseLayers[layer] ? c.moe : null;
    const mlp = moe
      ? c.hiddenSize * (moe.numExperts + 3 * moe.topK * moe.expertIntermediateSize)
      : 3 * c.hiddenSize * c.intermediateSize;
    macs += qkv + o + mlp;
  }
  return macs;
}

/**
 * Expert weight bytes a decode step of `batch` tokens does not read: the experts no token chose,
 * expected over uniform routing (each expert is skipped by a token with probability 1 - k/E).
 */
function unreadExpertBytes(c: ModelConfig, batch: number, bytes: number): number {
  const moe = c.moe;
  if (!moe) return 0;
  const sparse = moe.sparseLayers.filter(Boolean).length;
  const unused = moe.numExperts * (1 - moe.topK / moe.numExperts) ** batch;
  return sparse * unused * 3 * moe.expertIntermediateSize * c.hiddenSize * bytes;
}

/** A batch of `lengths.length` sequences, each computing `newTokens` tokens on top of
 * `cached` ones, with contiguous block tables (the layout doesn't change the work). */
function batchOf(numSeqs: number, newTokens: number, cached: number): ForwardBatch {
  const seqLen = cached + newTokens;
  const blocksPerSeq = Math.ceil(seqLen / BLOCK_SIZE);
  const tokenIds = new Int32Array(numSeqs * newTokens);
  const positions = new Int32Array(numSeqs * newTokens);
  const slotMapping = new Int32Array(numSeqs * newTokens);
  const blockTables = new Int32Array(numSeqs * blocksPerSeq);
  for (let s = 0; s < numSeqs; s++) {
    for (let b = 0; b < blocksPerSeq; b++) blockTables[s * blocksPerSeq + b] = s * blocksPerSeq + b;
    for (let i = 0; i < newTokens; i++) {
      const row = s * newTokens + i;
      tokenIds[row] = (row * 7919) % 1000;
      positions[row] = cached + i;
      slotMapping[row] = s * blocksPerSeq * BLOCK_SIZE + cached + i;
    }
  }
  return {
    tokenIds,
    positions,
    slotMapping,
    queryStartLoc: Int32Array.from({ length: numSeqs + 1 }, (_, s) => s * newTokens),
    seqLens: new Int32Array(numSeqs).fill(seqLen),
    blockTables,
    maxBlocksPerSeq: blocksPerSeq,
    logitsIndices: Int32Array.from({ length: numSeqs }, (_, s) => (s + 1) * newTokens - 1),
  };
}

/** The dense family a mixture's attention belongs to (Qwen2's q/k/v bias, Qwen3's q/k norm). */
const DENSE_TWINS: Partial<Record<Architecture, Architecture>> = {
  Qwen2MoeForCausalLM: "Qwen2ForCausalLM",
  Qwen3MoeForCausalLM: "Qwen3ForCausalLM",
};

const backend = await Backend.open({ numThreads: Number(options.threads) });
const ggufFile = options.model!.endsWith(".gguf") ? options.model! : null;
const config = resized(ggufFile ? ggufModel(ggufFile).config : await loadModelConfig(options.model!));

/** The model as --num-layers and --dense-twin ask (for dummy weights: only the shapes matter). */
function resized(c: ModelConfig): ModelConfig {
  const numLayers = options["num-layers"] === undefined ? c.numLayers : Number(options["num-layers"]);
  if (!Number.isInteger(numLayers) || numLayers < 1 || numLayers > c.numLayers)
    throw new Error(`--num-layers must be 1..${c.numLayers}`);
  const layers = { numLayers, layerTypes: c.layerTypes.slice(0, numLayers) };
  const moe = c.moe && { ...c.moe, sparseLayers: c.moe.sparseLayers.slice(0, numLayers) };
  if (!options["dense-twin"]) return { ...c, ...layers, moe };
  if (!moe) throw new Error("--dense-twin needs a mixture-of-experts model");
  return {
    ...c,
    ...layers,
    architecture: DENSE_TWINS[c.architecture] ?? "LlamaForCausalLM",
    // The shared expert (Qwen2-MoE) is active for every token too.
    intermediateSize: moe.topK * moe.expertIntermediateSize + (moe.sharedExpertIntermediateSize ?? 0),
    moe: null,
  };
}
const weightDtype = "bf16";
const actDtype = activationDtype(backend, weightDtype);
const quantization = (options.quantization ?? null) as QuantFormat | null;
if (quantization !== null && !ALL_QUANT_FORMATS.includes(quantization))
  throw new Error(`--quantization must be one of ${ALL_QUANT_FORMATS.join(", ")}`);
const storage = { dtype: weightDtype, quantization } as const;
const weights = ggufFile
  ? loadWeightsFromStore(backend, config, ggufTensorStore(ggufFile, config), ggufFile, storage)
  : dummyWeights(backend, config, storage, 1);

/** The formats of the linear layers, as "q5_0+q4_k" when a file mixes them (llama.cpp's Q4_K_M). */
function matrixFormats(modelWeights: ModelWeights): string {
  const matrices = modelWeights.layers.flatMap((layer) => [
    layer.qkv,
    layer.o,
    ...(layer.experts ? [layer.experts.gateUp, layer.experts.down] : [layer.gateUp!, layer.down!]),
    ...(layer.experts?.sharedExpert ? [layer.experts.sharedExpert.gateUp, layer.experts.sharedExpert.down] : []),
  ]);
  return [...new Set(matrices.map((matrix) => matrix.format))].join("+");
}
const weightFormat = matrixFormats(weights);
const maxBatch = Math.max(...batchSizes);
const blocksNeeded = Math.max(
  Math.ceil(promptLength / BLOCK_SIZE),
  maxBatch * Math.ceil((decodeContext + 1) / BLOCK_SIZE),
);
const kvCache = KvCacheTensors.allocate(backend, config, blocksNeeded, BLOCK_SIZE, weightDtype);
backend.memset(kvCache.base, 0, blocksNeeded * KvCacheTensors.bytesPerBlock(config, BLOCK_SIZE, weightDtype));
const forward = new ModelForward(backend, config, weights, kvCache, actDtype);
const graphs = options["enforce-eager"]
  ? null
  : new DecodeGraphs(backend, forward, { maxBatch, blockSize: BLOCK_SIZE, maxModelLen: decodeContext + 1 });

/** Greedy sampling parameters for `rows` sequences. */
function greedyParams(rows: number): DeviceSamplingParams {
  return {
    temperatures: new Float32Array(rows),
    topK: new Int32Array(rows),
    topP: new Float32Array(rows).fill(1),
    minP: new Float32Array(rows),
    uniforms: new Float32Array(rows),
  };
}

// Baselines in the same run.
const matmulPeak = await (async () => {
  const m = 512,
    n = 4096,
    k = 4096;
  const x = backend.malloc(m * k * 4);
  const w = backend.malloc(n * k * 2);
  const out = backend.malloc(m * n * 4);
  backend.fillUniform(x, "f32", m * k, 1, 1);
  backend.fillUniform(w, "bf16", n * k, 2, 0.01);
  const t = await seconds(() => backend.matmul({ x, w, out, m, n, k, actDtype: "f32", weightDtype: "bf16" }), 3);
  [x, w, out].forEach((a) => {
    backend.free(a);
  });
  return (2 * m * n * k) / t / 1e9;
})();
const copyBandwidth = await (async () => {
  const bytes = 512 * 2 ** 20;
  const src = backend.malloc(bytes);
  const dst = backend.malloc(bytes);
  backend.memset(src, 1, bytes);
  const t = await seconds(() => backend.memcpy(dst, src, bytes, "deviceToDevice"), 5);
  backend.free(src);
  backend.free(dst);
  return (2 * bytes) / t / 1e9;
})();

const macs = linearMacsPerToken(config);
const weightBytes = weights.totalBytes;
// A decode step reads every weight once except the embedding table, of which it reads a row per
// token (unless the LM head is that table).
const embeddingBytes = config.tieWordEmbeddings ? 0 : config.vocabSize * config.hiddenSize * dtypeBytes(weightDtype);
const stepBytes = weightBytes - embeddingBytes;
const lmHeadMacs = config.vocabSize * config.hiddenSize;

const prefillBatch = batchOf(1, promptLength, 0);
const prefillSeconds = await seconds(() => forward.greedy(prefillBatch), 2);
const prefillGflops = (2 * (macs * promptLength + lmHeadMacs)) / prefillSeconds / 1e9;

const decode = [];
for (const batchSize of batchSizes) {
  const batch = batchOf(batchSize, 1, decodeContext);
  const params = greedyParams(batchSize);
  const step = graphs ? () => graphs.run(batch, params) : () => forward.greedy(batch);
  const stepSeconds = await seconds(step, decodeSteps);
  const gflops = (2 * batchSize * (macs + lmHeadMacs)) / stepSeconds / 1e9;
  decode.push({
    batchSize,
    contextLength: decodeContext,
    stepMs: stepSeconds * 1000,
    tokensPerSecond: batchSize / stepSeconds,
    gflops,
    // Every weight byte but the embedding's (and unused experts') is read once per step.
    weightGBps: (stepBytes - unreadExpertBytes(config, batchSize, dtypeBytes(weightDtype))) / stepSeconds / 1e9,
  });
}

const result = {
  model: options.model,
  architecture: config.architecture,
  device: `${backend.name} (${backend.deviceName})`,
  weightDtype,
  weightFormat,
  weightMiB: weightBytes / 2 ** 20,
  decodeSteps: graphs ? "captured graphs" : "op by op (--enforce-eager)",
  baselines: { matmulPeakGflops: matmulPeak, copyBandwidthGBps: copyBandwidth },
  prefill: {
    promptLength,
    seconds: prefillSeconds,
    tokensPerSecond: promptLength / prefillSeconds,
    gflops: prefillGflops,
    fractionOfMatmulPeak: prefillGflops / matmulPeak,
  },
  decode: decode.map((d) => ({ ...d, fractionOfCopyBandwidth: d.weightGBps / copyBandwidth })),
};

const f = (n: number, digits = 1) => n.toFixed(digits);
console.log(
  `${result.model} (${config.architecture}, ${f(result.weightMiB)} MiB of ${weightFormat} weights) on ${result.device}`,
);
console.log(`baselines: matmul ${f(matmulPeak)} GFLOP/s (512x4096x4096, bf16 weights), copy ${f(copyBandwidth)} GB/s`);
console.log(
  `prefill ${promptLength} tokens: ${f(result.prefill.tokensPerSecond)} tokens/s, ${f(prefillGflops)} GFLOP/s (${f(100 * result.prefill.fractionOfMatmulPeak, 0)}% of matmul peak)`,
);
console.log(`decode steps: ${result.decodeSteps}`);
console.log("decode (context %d):  batch  step ms  tokens/s  GFLOP/s  weights GB/s  of copy bw", decodeContext);
for (const d of result.decode) {
  console.log(
    `                     ${String(d.batchSize).padStart(5)}  ${f(d.stepMs).padStart(7)}  ${f(d.tokensPerSecond).padStart(8)}  ${f(d.gflops).padStart(7)}  ${f(d.weightGBps, 2).padStart(12)}  ${f(100 * d.fractionOfCopyBandwidth, 0).padStart(9)}%`,
  );
}
if (options["output-json"]) await Bun.write(options["output-json"], `${JSON.stringify(result, null, 2)}\n`);

graphs?.free();
forward.free();
kvCache.free();
weights.free();
backend.close();
