// Reads a model's safetensors weights (one file or shards named by an index) through mmap, so a
// tensor is a view into the page cache and a load never copies the checkpoint into the JS heap.
// Headers are checked up front: a truncated or inconsistent file fails at open, naming the file.

import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { DTYPES, dtypeOfSafetensorsName } from "../backend/dtype.ts";
import { ModelLoadError, readJsonFile } from "./errors.ts";
import type { TensorStore } from "./tensor-store.ts";

/** Element sizes of every dtype the format defines, so sizes can be checked before use. */
const FORMAT_DTYPE_BYTES: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
};

const SINGLE_FILE = "model.safetensors";
const INDEX_FILE = "model.safetensors.index.json";

interface TensorEntry {
  file: string;
  dtype: string;
  shape: number[];
  bytes: Uint8Array;
}

function isNonNegativeInt(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function parseEntry(file: string, name: string, entry: unknown, data: Uint8Array): TensorEntry {
  const fail = (problem: string): never => {
    throw new ModelLoadError(file, `tensor "${name}": ${problem}`);
  };
  if (typeof entry !== "object" || entry === null) return fail("header entry is not an object");
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
  if (typeof dtype !== "string" || !(dtype in FORMAT_DTYPE_BYTES)) {
    return fail(`unknown dtype ${JSON.stringify(dtype)}`);
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInt)) {
    return fail(`shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInt)) {
    return fail(`data_offsets must be [begin, end], got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end || end > data.byteLength) {
    fail(`data_offsets [${begin}, ${end}] out of range of the ${data.byteLength} data bytes (truncated file?)`);
  }
  const expected = shape.reduce((count: number, dim: number) => count * dim, 1) * FORMAT_DTYPE_BYTES[dtype]!;
  if (end - begin !== expected) {
    fail(
      `header lying about sizes: shape [${shape.join(", ")}] of ${dtype} needs ${expected} bytes, data_offsets span ${end - begin}`,
    );
  }
  return { file, dtype, shape: shape as number[], bytes: data.subarray(begin, end) };
}

/** Maps one safetensors file and returns its tensors by name. */
function readSafetensorsFile(file: string): Map<string, TensorEntry> {
  if (!existsSync(file)) throw new ModelLoadError(file, "file not found");
  const size = statSync(file).size;
  if (size < 8) throw new ModelLoadError(file, `only ${size} bytes, too short for a safetensors header`);
  const mapped = Bun.mmap(file, { shared: false });
  const headerLength = new DataView(mapped.buffer, mapped.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(size - 8)) {
    throw new ModelLoadError(
      file,
      `header length ${headerLength} runs past the end of the ${size}-byte file (truncated?)`,
    );
  }
  const dataStart = 8 + Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(mapped.subarray(8, dataStart)));
  } catch (error) {
    throw new ModelLoadError(file, `invalid safetensors header JSON (${(error as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new ModelLoadError(file, "safetensors header is not a JSON object");
  }
  const data = mapped.subarray(dataStart);
  const tensors = new Map<string, TensorEntry>();
  for (const [name, entry] of Object.entries(header)) {
    if (name !== "__metadata__") tensors.set(name, parseEntry(file, name, entry, data));
  }
  return tensors;
}

/** The shard files of a sharded checkpoint, each tensor checked to be where the index says. */
function readShardedIndex(modelDir: string): Map<string, TensorEntry> {
  const indexFile = join(modelDir, INDEX_FILE);
  const index = readJsonFile(indexFile);
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
    throw new ModelLoadError(indexFile, `missing "weight_map" object`);
  }
  const shards = new Map<string, Map<string, TensorEntry>>();
  const tensors = new Map<string, TensorEntry>();
  for (const [name, shardName] of Object.entries(weightMap)) {
    if (typeof shardName !== "string") {
      throw new ModelLoadError(indexFile, `weight_map entry for "${name}" is not a file name`);
    }
    const shardFile = join(modelDir, shardName);
    if (!shards.has(shardFile)) {
      if (!existsSync(shardFile)) {
        throw new ModelLoadError(indexFile, `tensor "${name}" is in ${shardName}, which is missing`);
      }
      shards.set(shardFile, readSafetensorsFile(shardFile));
    }
    const entry = shards.get(shardFile)!.get(name);
    if (entry === undefined) {
      throw new ModelLoadError(
        shardFile,
        `index ${INDEX_FILE} places tensor "${name}" here, but the file has no such tensor`,
      );
    }
    tensors.set(name, entry);
  }
  return tensors;
}

/** Opens the weights of `modelDir`: model.safetensors if present, else the sharded index. */
export function openSafetensors(modelDir: string): TensorStore {
  const singleFile = join(modelDir, SINGLE_FILE);
  let tensors: Map<string, TensorEntry>;
  if (existsSync(singleFile)) tensors = readSafetensorsFile(singleFile);
  else if (existsSync(join(modelDir, INDEX_FILE))) tensors = readShardedIndex(modelDir);
  else throw new ModelLoadError(modelDir, `no ${SINGLE_FILE} or ${INDEX_FILE} found`);

  return {
    has: (name) => tensors.has(name),
    names: () => [...tensors.keys()],
    tensor(name) {
      const entry = tensors.get(name);
      if (entry === undefined) throw new ModelLoadError(modelDir, `tensor "${name}" not found in the model's weights`);
      const dtype = dtypeOfSafetensorsName(entry.dtype);
      if (dtype === undefined) {
        const supported = Object.values(DTYPES)
          .map((d) => d.safetensors)
          .join(", ");
        throw new ModelLoadError(
          entry.file,
          `tensor "${name}" has unsupported dtype ${entry.dtype} (supported: ${supported})`,
        );
      }
      return { dtype, shape: entry.shape, bytes: entry.bytes };
    },
  };
}
