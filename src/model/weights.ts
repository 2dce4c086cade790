// Model weights in device memory, uploaded once at load. Q/K/V and gate/up are fused into one
// matrix each (rows stacked in that order), which is what the forward pass multiplies by.
// Sources: a checkpoint read through a TensorStore (safetensors or GGUF), or deterministic random
// values (`--load-format dummy`).
import { type Address, offsetAddress } from "../backend/address.ts";
import type { Backend } from "../backend/backend.ts";
import { type DType, dtypeBytes } from "../backend/dtype.ts";
import type { ModelConfig } from "./config.ts";
import { ModelLoadError } from "./errors.ts";
import type { TensorStore } from "./tensor-store.ts";
import { fillUniform } from "./uniform-hash.ts";
import { expectedShapes, tensorNames } from "./weight-names.ts";

export interface LayerWeights {
  inputNorm: Address;
  qkv: Address;
  qkvBias: Address | null;
  qNorm: Address | null;
  kNorm: Address | null;
  o: Address;
  postNorm: Address;
  gateUp: Address;
  down: Address;
}

export interface ModelWeights {
  dtype: DType;
  embed: Address;
  layers: LayerWeights[];
  finalNorm: Address;
  lmHead: Address;
  totalBytes: number;
  free(): void;
}

/** Where the values of each (unfused) Hugging Face tensor come from. */
interface TensorSource {
  /** Write tensor `name` of `count` elements into `dst` (weights dtype). */
  place(name: string, dst: Address, count: number): void;
}

/** Allocates the fused layout and asks the source to fill each piece. */
function buildWeights(backend: Backend, config: ModelConfig, dtype: DType, source: TensorSource): ModelWeights {
  const names = tensorNames(config);
  const shapes = expectedShapes(config);
  const bytesPerElement = dtypeBytes(dtype);
  const allocations: Address[] = [];
  let totalBytes = 0;
  const count = (name: string) => shapes.get(name)!.reduce((a, b) => a * b, 1);

  // One allocation per fused tensor, filled piece by piece in row order.
  const fused = (parts: (string | null)[]): Address | null => {
    const present = parts.filter((p): p is string => p !== null);
    if (present.length === 0) return null;
    const elements = present.reduce((sum, name) => sum + count(name), 0);
    const address = backend.malloc(elements * bytesPerElement);
    allocations.push(address);
    totalBytes += elements * bytesPerElement;
    let offset = 0;
    for (const name of present) {
      source.place(name, offsetAddress(address, offset * bytesPerElement), count(name));
      offset += count(name);
    }
    return address;
  };

  try {
    const embed = fused([names.embed])!;
    const layers = names.layers.map(
      (l): LayerWeights => ({
        inputNorm: fused([l.inputNorm])!,
        qkv: fused([l.q, l.k, l.v])!,
        qkvBias: fused([l.qBias, l.kBias, l.vBias]),
        qNorm: fused([l.qNorm]),
        kNorm: fused([l.kNorm]),
        o: fused([l.o])!,
        postNorm: fused([l.postNorm])!,
        gateUp: fused([l.gate, l.up])!,
        down: fused([l.down])!,
      }),
    );
    const finalNorm = fused([names.finalNorm])!;
    const lmHead = config.tieWordEmbeddings ? embed : fused([names.lmHead])!;
    return {
      dtype,
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

/** Upload a checkpoint, converting each tensor to `dtype` on the device when it differs. */
export function loadWeightsFromStore(
  backend: Backend,
  config: ModelConfig,
  store: TensorStore,
  modelDir: string,
  dtype: DType,
): ModelWeights {
  const shapes = expectedShapes(config);
  let scratch: { address: Address; bytes: number } | null = null;
  const source: TensorSource = {
    place(name, dst, count) {
      const tensor = store.tensor(name);
      const expected = shapes.get(name)!;
      if (tensor.shape.length !== expected.length || tensor.shape.some((d, i) => d !== expected[i])) {
        throw new ModelLoadError(
          modelDir,
          `tensor ${name} has shape [${tensor.shape}] but config.json implies [${expected}]`,
        );
      }
      const sourceDtype = tensor.dtype;
      if (sourceDtype === dtype) {
        backend.upload(dst, tensor.bytes);
        return;
      }
      if (!scratch || scratch.bytes < tensor.bytes.byteLength) {
        if (scratch) backend.free(scratch.address);
        scratch = { address: backend.malloc(tensor.bytes.byteLength), bytes: tensor.bytes.byteLength };
      }
      backend.upload(scratch.address, tensor.bytes);
      backend.convert(dst, dtype, scratch.address, sourceDtype, count);
    },
  };
  try {
    return buildWeights(backend, config, dtype, source);
  } finally {
    const s = scratch as { address: Address } | null;
    if (s) backend.free(s.address);
  }
}

/**
 * Deterministic random weights for a config (vLLM's `--load-format dummy`): matrices uniform in
 * ±1/sqrt(fan_in) so activations keep their scale through the layers, norm weights near 1.
 * Each tensor's seed derives from `seed` and its position, so a model is the same every run.
 */
export function dummyWeights(backend: Backend, config: ModelConfig, dtype: DType, seed: number): ModelWeights {
  const shapes = expectedShapes(config);
  let tensorIndex = 0;
  const source: TensorSource = {
    place(name, dst, count) {
      const tensorSeed = (seed * 1000003 + tensorIndex++) >>> 0;
      const shape = shapes.get(name)!;
      if (name.endsWith("norm.weight")) {
        const values = new Float32Array(count);
        fillUniform(values, tensorSeed, 0.1);
        for (let i = 0; i < count; i++) values[i]! += 1;
        uploadF32(backend, dst, dtype, values);
      } else {
        const fanIn = shape.length === 2 ? shape[1]! : shape[0]!;
        const scale = name.endsWith("embed_tokens.weight") ? 1 : 1 / Math.sqrt(fanIn);
        backend.fillUniform(dst, dtype, count, tensorSeed, scale);
      }
    },
  };
  return buildWeights(backend, config, dtype, source);
}

/** Upload f32 host values into a `dtype` device tensor. */
function uploadF32(backend: Backend, dst: Address, dtype: DType, values: Float32Array): void {
  if (dtype === "f32") {
    backend.upload(dst, values);
    return;
  }
  const scratch = backend.malloc(values.byteLength);
  try {
    backend.upload(scratch, values);
    backend.convert(dst, dtype, scratch, "f32", values.length);
  } finally {
    backend.free(scratch);
  }
}
