// Model weights in device memory, uploaded once at load. Q/K/V and gate/up are fused into one
// matrix each (rows stacked in that order), which is what the forward pass multiplies by. Each
// matrix has its own format: the model's dtype, or a quantized one (a GGUF file's, or
// --quantization's, applied on load). Gemma's norm weights, stored as offsets from 1, are held
// as 1 + w (in f32 where the activations are), so every model's RMSNorm multiplies by its weight.
// Sources: a checkpoint read through a TensorStore (safetensors or GGUF), or deterministic random
// values (`--load-format dummy`).

import { activationDtype } from "../backend/activation-dtype.ts";
import { type Address, offsetAddress } from "../backend/address.ts";
import type { Backend } from "../backend/backend.ts";
import { type DType, decodeToF32, dtypeBytes, encodeFromF32 } from "../backend/dtype.ts";
import {
  isQuantFormat,
  QUANT_FORMATS,
  type QuantFormat,
  storageBytes,
  type WeightFormat,
} from "../backend/weight-format.ts";
import type { ModelConfig } from "./config.ts";
import { ModelLoadError } from "./errors.ts";
import type { StoredTensor, TensorStore } from "./tensor-store.ts";
import { fillUniform } from "./uniform-hash.ts";
import { expectedShapes, tensorNames } from "./weight-names.ts";

/** A linear layer's weight matrix ([out, in] rows) and how it is stored. */
export interface Matrix {
  address: Address;
  format: WeightFormat;
}

export interface LayerWeights {
  inputNorm: Address;
  qkv: Matrix;
  qkvBias: Address | null;
  qNorm: Address | null;
  kNorm: Address | null;
  o: Matrix;
  /** Gemma's norm of the attention output. */
  attentionOutputNorm: Address | null;
  mlpInputNorm: Address;
  /** Gemma's norm of the MLP output. */
  mlpOutputNorm: Address | null;
  /** A dense layer's MLP (null in a sparse one). */
  gateUp: Matrix | null;
  down: Matrix | null;
  /** A sparse layer's router and experts (null in a dense one). */
  experts: ExpertWeights | null;
}

/** A mixture-of-experts layer: the router and the experts' matrices, stacked in expert order. */
export interface ExpertWeights {
  /** [num_experts, hidden] in the model's dtype (never quantized, as llama.cpp keeps it too). */
  router: Address;
  /** [num_experts, 2 I, hidden]: each expert's gate rows, then its up rows. */
  gateUp: Matrix;
  /** [num_experts, hidden, I]. */
  down: Matrix;
  /** Qwen2-MoE's shared expert; null in other families. */
  sharedExpert: SharedExpertWeights | null;
}

/** Qwen2-MoE's shared expert: a dense SwiGLU MLP of width S, and its gate. */
export interface SharedExpertWeights {
  /** [2 S, hidden]: gate rows, then up rows. */
  gateUp: Matrix;
  /** [hidden, S]. */
  down: Matrix;
  /** [1, hidden] in the model's dtype (never quantized, as the router). */
  gate: Address;
}

export interface ModelWeights {
  /** Norms, embeddings, biases, the KV cache, and unquantized matrices. */
  dtype: DType;
  /** The norms': dtype, or f32 for Gemma's 1 + w where the backend computes in f32. */
  normDtype: DType;
  embed: Address;
  layers: LayerWeights[];
  finalNorm: Address;
  lmHead: Matrix;
  totalBytes: number;
  free(): void;
}

/** Where the values of each (unfused) Hugging Face tensor come from. */
interface TensorSource {
  /** The format the tensor is stored in at the source (a GGUF file's may be quantized). */
  formatOf(name: string): WeightFormat;
  /** Write tensor `name` of `count` elements into `dst`, stored as `format`. */
  place(name: string, dst: Address, count: number, format: WeightFormat): void;
}

/** How the engine stores a checkpoint: the dtype of everything, and a quantization of the matrices. */
export interface StorageChoice {
  dtype: DType;
  /** Quantize the matrices on load (--quantization); null keeps the source's formats. */
  quantization: QuantFormat | null;
}

/** Most precise first: a fused matrix whose parts differ takes the most precise of them. */
const PRECISION: readonly WeightFormat[] = [
  "f32",
  "f16",
  "bf16",
  "q8_0",
  "q6_k",
  "q5_1",
  "q5_k",
  "q5_0",
  "q4_1",
  "q4_k",
  "q4_0",
];

/**
 * A K-quant needs rows of whole 256-value blocks; a matrix whose rows are not (hidden sizes such
 * as 896 or 576) takes a 32-value format of about the same size, as llama.cpp falls back.
 */
const FALLBACK: Record<QuantFormat, QuantFormat | null> = {
  q4_k: "q5_0",
  q5_k: "q5_1",
  q6_k: "q8_0",
  q8_0: null,
  q4_0: null,
  q4_1: null,
  q5_0: null,
  q5_1: null,
};

/**
 * The format of a matrix with rows of k: the source's (the most precise of its parts'), or the
 * requested quantization when k is whole blocks of it, else its fallback, else the model's dtype.
 */
function matrixFormat(parts: readonly WeightFormat[], k: number, storage: StorageChoice): WeightFormat {
  const { quantization, dtype } = storage;
  if (quantization === null) return PRECISION.find((format) => parts.includes(format))!;
  for (let format: QuantFormat | null = quantization; format !== null; format = FALLBACK[format])
    if (k % QUANT_FORMATS[format].blockElements === 0) return format;
  return dtype;
}

/** Allocates the fused layout and asks the source to fill each piece. */
function buildWeights(
  backend: Backend,
  config: ModelConfig,
  storage: StorageChoice,
  source: TensorSource,
): ModelWeights {
  const names = tensorNames(config);
  const shapes = expectedShapes(config);
  const { dtype } = storage;
  const allocations: Address[] = [];
  let totalBytes = 0;
  const count = (name: string) => shapes.get(name)!.reduce((a, b) => a * b, 1);

  // One allocation per fused tensor, filled piece by piece in row order. `matrices` > 1 stacks that
  // many equal matrices (experts), each packed on its own as vt_moe_matmul reads them.
  const fused = (
    parts: (string | null)[],
    format: (present: string[]) => WeightFormat,
    matrices = 1,
  ): Matrix | null => {
    const present = parts.filter((p): p is string => p !== null);
    if (present.length === 0) return null;
    const target = format(present);
    const elements = present.reduce((sum, name) => sum + count(name), 0);
    const address = backend.malloc(storageBytes(target, elements));
    allocations.push(address);
    totalBytes += storageBytes(target, elements);
    let offset = 0;
    for (const name of present) {
      source.place(name, offsetAddress(address, offset), count(name), target);
      offset += storageBytes(target, count(name));
    }
    // Quantized matrices take the layout the backend's matmul reads, once they are whole.
    if (isQuantFormat(target)) {
      const k = shapes.get(present[0]!)![1]!;
      const n = elements / k / matrices;
      for (let m = 0; m < matrices; m++)
        backend.packWeights({ w: offsetAddress(address, m * storageBytes(target, n * k)), n, k, format: target });
    }
    return { address, format: target };
  };
  const plain = (parts: (string | null)[], format: DType = dtype) => fused(parts, () => format)?.address ?? null;
  // transformers multiplies by Gemma's 1 + w in f32: so does the engine wherever its activations
  // are f32 (a 16-bit 1 + w would round it); the CUDA backend's 16-bit activations take weights of
  // their own dtype.
  const normDtype: DType = config.normWeightsFromOne && activationDtype(backend, dtype) === "f32" ? "f32" : dtype;
  const norm = (name: string | null): Address | null => {
    const address = plain([name], normDtype);
    if (address !== null && name !== null && config.normWeightsFromOne)
      addOne(backend, address, count(name), normDtype);
    return address;
  };
  const matrix = (parts: string[], matrices = 1) =>
    fused(
      parts,
      (present) => matrixFormat(present.map(source.formatOf), shapes.get(present[0]!)![1]!, storage),
      matrices,
    )!;
  const numExperts = config.moe?.numExperts ?? 0;
  try {
    const embed = plain([names.embed])!;
    const layers = names.layers.map((l): LayerWeights => {
      const qkv = matrix(l.qkv);
      // A quantized matrix takes its bias in the activation dtype.
      const biasDtype = isQuantFormat(qkv.format) ? activationDtype(backend, dtype) : dtype;
      return {
        inputNorm: norm(l.inputNorm)!,
        qkv,
        qkvBias: plain(l.qkvBias, biasDtype),
        qNorm: norm(l.qNorm),
        kNorm: norm(l.kNorm),
        o: matrix([l.o]),
        attentionOutputNorm: norm(l.attentionOutputNorm),
        mlpInputNorm: norm(l.mlpInputNorm)!,
        mlpOutputNorm: norm(l.mlpOutputNorm),
        gateUp: l.down === null ? null : matrix(l.gateUp),
        down: l.down === null ? null : matrix([l.down]),
        experts: l.experts && {
          router: plain([l.experts.router])!,
          gateUp: matrix(l.experts.gateUp, numExperts),
          down: matrix(l.experts.down, numExperts),
          sharedExpert: l.experts.sharedExpert && {
            gateUp: matrix(l.experts.sharedExpert.gateUp),
            down: matrix([l.experts.sharedExpert.down]),
            gate: plain([l.experts.sharedExpert.gate])!,
          },
        },
      };
    });
    const finalNorm = norm(names.finalNorm)!;
    // A tied head reads the embedding, unless its matrix is stored quantized: then it gets a copy
    // of its own in that format (the embedding lookup reads the dtype's).
    const tiedFormat = matrixFormat([source.formatOf(names.embed)], config.hiddenSize, storage);
    const lmHead =
      config.tieWordEmbeddings && !isQuantFormat(tiedFormat)
        ? { address: embed, format: dtype }
        : matrix([names.lmHead]);
    return {
      dtype,
      normDtype,
      embed,
      layers,
      finalNorm,
      lmHead,
      totalBytes,
      free: () => {
        for (const address of allocations.splice(0)) backend.free(address);
      },
    };
  } catch (error) {
    allocations.forEach((a) => {
      backend.free(a);
    });
    throw error;
  }
}

/**
 * Adds 1 to the `count` values of `dtype` at `address`: a Gemma norm weight w becomes the 1 + w it
 * multiplies by (exact in f32; in bf16 a rounding of at most 2^-9 relative). Norms are small, so
 * this goes by the host.
 */
function addOne(backend: Backend, address: Address, count: number, dtype: DType): void {
  const values = decodeToF32(backend.download(new Uint8Array(count * dtypeBytes(dtype)), address), dtype);
  for (let i = 0; i < count; i++) values[i]! += 1;
  backend.upload(address, encodeFromF32(values, dtype));
}

/**
 * Stores `bytes` (`count` elements of `from`) at `dst` as `to`, through device scratch space
 * when they differ. Two quantized formats convert through f32.
 */
class Converter {
  private scratch: { address: Address; bytes: number }[] = [];

  constructor(private readonly backend: Backend) {}

  place(bytes: Uint8Array, from: WeightFormat, dst: Address, to: WeightFormat, count: number): void {
    const { backend } = this;
    if (from === to) {
      backend.upload(dst, bytes);
      return;
    }
    const staged = this.space(0, bytes.byteLength);
    backend.upload(staged, bytes);
    if (isQuantFormat(from) && isQuantFormat(to)) {
      const f32 = this.space(1, count * 4);
      backend.convert(f32, "f32", staged, from, count);
      backend.convert(dst, to, f32, "f32", count);
    } else {
      backend.convert(dst, to, staged, from, count);
    }
  }

  free(): void {
    for (const { address } of this.scratch.splice(0)) this.backend.free(address);
  }

  private space(slot: number, bytes: number): Address {
    const held = this.scratch[slot];
    if (held && held.bytes >= bytes) return held.address;
    if (held) this.backend.free(held.address);
    this.scratch[slot] = { address: this.backend.malloc(bytes), bytes };
    return this.scratch[slot]!.address;
  }
}

/** Upload a checkpoint, converting (or quantizing) each tensor on the device as `storage` says. */
export function loadWeightsFromStore(
  backend: Backend,
  config: ModelConfig,
  store: TensorStore,
  modelDir: string,
  storage: StorageChoice,
): ModelWeights {
  const shapes = expectedShapes(config);
  const converter = new Converter(backend);
  // A tensor is asked for its format just before it is placed: look it up once.
  let last: { name: string; tensor: StoredTensor } | null = null;
  const tensor = (name: string) => {
    if (last?.name !== name) last = { name, tensor: store.tensor(name) };
    return last.tensor;
  };
  const source: TensorSource = {
    // Quantized tensors (a GGUF file's) keep their format; the others take the model's dtype.
    formatOf: (name) => {
      const format = tensor(name).dtype;
      return isQuantFormat(format) ? format : storage.dtype;
    },
    place(name, dst, count, format) {
      const stored = tensor(name);
      const expected = shapes.get(name)!;
      if (stored.shape.length !== expected.length || stored.shape.some((d, i) => d !== expected[i])) {
        throw new ModelLoadError(
          modelDir,
          `tensor ${name} has shape [${stored.shape}] but the model's config implies [${expected}]`,
        );
      }
      converter.place(stored.bytes, stored.dtype, dst, format, count);
    },
  };
  try {
    return buildWeights(backend, config, storage, source);
  } finally {
    converter.free();
  }
}

/**
 * Deterministic random weights for a config (vLLM's `--load-format dummy`): matrices uniform in
 * ±1/sqrt(fan_in) so activations keep their scale through the layers, norm weights near 1.
 * Each tensor's seed derives from `seed` and its position, so a model is the same every run.
 */
export function dummyWeights(
  backend: Backend,
  config: ModelConfig,
  storage: StorageChoice,
  seed: number,
): ModelWeights {
  const shapes = expectedShapes(config);
  const { dtype } = storage;
  // A tensor placed twice (a tied head quantized apart from the embedding) gets its first seed.
  const seeds = new Map<string, number>();
  const converter = new Converter(backend);
  let scratch: Address | null = null;
  const source: TensorSource = {
    formatOf: () => dtype,
    place(name, dst, count, format) {
      if (!seeds.has(name)) seeds.set(name, (seed * 1000003 + seeds.size) >>> 0);
      const tensorSeed = seeds.get(name)!;
      const shape = shapes.get(name)!;
      if (name.endsWith("norm.weight")) {
        // Near 1 as the model multiplies by them (Gemma's are stored as offsets from 1).
        const values = new Float32Array(count);
        fillUniform(values, tensorSeed, 0.1);
        if (!config.normWeightsFromOne) for (let i = 0; i < count; i++) values[i]! += 1;
        converter.place(new Uint8Array(values.buffer), "f32", dst, format, count);
        return;
      }
      const fanIn = shape.length === 2 ? shape[1]! : shape[0]!;
      const scale = name.endsWith("embed_tokens.weight") ? 1 : 1 / Math.sqrt(fanIn);
      if (!isQuantFormat(format)) {
        backend.fillUniform(dst, format, count, tensorSeed, scale);
        return;
      }
      // Quantized: the values the unquantized model would have, quantized as on load.
      if (scratch === null) scratch = backend.malloc(largestTensor(shapes) * 4);
      backend.fillUniform(scratch, "f32", count, tensorSeed, scale);
      backend.convert(dst, format, scratch, "f32", count);
    },
  };
  try {
    return buildWeights(backend, config, storage, source);
  } finally {
    converter.free();
    if (scratch !== null) backend.free(scratch);
  }
}

function largestTensor(shapes: Map<string, number[]>): number {
  return Math.max(...[...shapes.values()].map((shape) => shape.reduce((a, b) => a * b, 1)));
}
