// A GGUF file (llama.cpp's model container) mapped into memory: header, metadata key/values,
// tensor infos, then the tensor data, each tensor at an aligned offset from the data section's
// start. Everything is checked at open (sizes, bounds, alignment, overlaps), so a truncated or
// lying file fails here, naming the file, and tensors are views into the page cache.
import { existsSync, statSync } from "node:fs";
import { ModelLoadError } from "../errors.ts";
import { type GgmlType, ggmlTypeOfId } from "./ggml-types.ts";
import { GgufCursor } from "./gguf-cursor.ts";
import { type GgufValue, readValue, readValueType } from "./gguf-values.ts";

export interface GgufTensorInfo {
  name: string;
  type: GgmlType;
  /** Dimensions as Hugging Face and PyTorch write them, outermost first (GGUF lists them reversed). */
  shape: number[];
  /** The tensor's bytes, rows in order, a view into the mapped file. */
  bytes: Uint8Array;
}

export interface GgufFile {
  file: string;
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: Map<string, GgufTensorInfo>;
}

/** "GGUF" read as a little-endian u32. */
const MAGIC = 0x46554747;
const SUPPORTED_VERSIONS = [2, 3];
const DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_DIMS. */
const MAX_DIMS = 4;

function readHeader(cursor: GgufCursor): number {
  const magic = cursor.u32("magic");
  if (magic !== MAGIC) {
    const text = JSON.stringify(new TextDecoder("latin1").decode(cursor.bytes.subarray(0, 4)));
    cursor.fail(`not a GGUF file: starts with ${text}, not "GGUF"`);
  }
  const version = cursor.u32("version");
  if (!SUPPORTED_VERSIONS.includes(version)) {
    // A big-endian file reads its small version number byte-swapped.
    const swapped = version > 0xffffff ? " (a big-endian file, which is not supported)" : "";
    cursor.fail(`unsupported GGUF version ${version}${swapped}; supported: ${SUPPORTED_VERSIONS.join(", ")}`);
  }
  return version;
}

function readMetadata(cursor: GgufCursor, count: number): Map<string, GgufValue> {
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < count; i++) {
    const key = cursor.string(`key of metadata entry ${i}`);
    const type = readValueType(cursor, `metadata "${key}"`);
    metadata.set(key, readValue(cursor, type, `metadata "${key}"`));
  }
  return metadata;
}

function readAlignment(cursor: GgufCursor, metadata: Map<string, GgufValue>): number {
  const value = metadata.get("general.alignment");
  if (value === undefined) return DEFAULT_ALIGNMENT;
  if (typeof value !== "number" || !Number.isInteger(value) || value <= 0 || (value & (value - 1)) !== 0) {
    cursor.fail(`general.alignment must be a power of two, got ${String(value)}`);
  }
  return value;
}

interface RawTensorInfo {
  name: string;
  type: GgmlType;
  shape: number[];
  offset: number;
  byteLength: number;
}

function readTensorInfo(cursor: GgufCursor, index: number): RawTensorInfo {
  const name = cursor.string(`name of tensor ${index}`);
  const fail = (problem: string): never => cursor.fail(`tensor "${name}": ${problem}`);
  const numDims = cursor.u32(`number of dimensions of tensor "${name}"`);
  if (numDims < 1 || numDims > MAX_DIMS) fail(`has ${numDims} dimensions (1 to ${MAX_DIMS} allowed)`);
  const dims: number[] = [];
  for (let d = 0; d < numDims; d++) {
    const dim = cursor.u64(`dimension ${d} of tensor "${name}"`);
    if (dim < 1n || dim > BigInt(Number.MAX_SAFE_INTEGER)) fail(`dimension ${d} is ${dim}`);
    dims.push(Number(dim));
  }
  const typeId = cursor.u32(`type of tensor "${name}"`);
  const type = ggmlTypeOfId(typeId);
  if (type === undefined) return fail(`unknown ggml tensor type ${typeId}`);
  const offset = cursor.u64(`data offset of tensor "${name}"`);
  if (offset > BigInt(cursor.bytes.byteLength)) {
    fail(`data offset ${offset} lies past the end of the ${cursor.bytes.byteLength}-byte file`);
  }
  const elements = dims.reduce((product, dim) => product * dim, 1);
  if (!Number.isSafeInteger(elements)) fail(`has too many elements (dimensions ${dims.join(" x ")})`);
  // ggml stores a row (the innermost dimension, listed first) as whole blocks.
  if (dims[0]! % type.blockSize !== 0) {
    fail(`rows of ${dims[0]} elements are not a whole number of ${type.name} blocks of ${type.blockSize}`);
  }
  return {
    name,
    type,
    shape: dims.toReversed(),
    offset: Number(offset),
    byteLength: (elements / type.blockSize) * type.bytesPerBlock,
  };
}

/** Each tensor within the data section, aligned, and not overlapping another. */
function checkPlacement(cursor: GgufCursor, infos: RawTensorInfo[], dataStart: number, alignment: number): void {
  const dataBytes = cursor.bytes.byteLength - dataStart;
  for (const info of infos) {
    if (info.offset % alignment !== 0) {
      cursor.fail(`tensor "${info.name}": data offset ${info.offset} is not a multiple of the alignment ${alignment}`);
    }
    if (info.offset + info.byteLength > dataBytes) {
      cursor.fail(
        `tensor "${info.name}": ${info.byteLength} bytes at data offset ${info.offset} run past the end of the ${dataBytes}-byte data section (truncated file?)`,
      );
    }
  }
  const byOffset = infos.toSorted((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const previous = byOffset[i - 1]!;
    const current = byOffset[i]!;
    if (current.offset < previous.offset + previous.byteLength) {
      cursor.fail(
        `tensors "${previous.name}" (bytes ${previous.offset} to ${previous.offset + previous.byteLength}) and "${current.name}" (from ${current.offset}) overlap`,
      );
    }
  }
}

export function readGgufFile(file: string): GgufFile {
  if (!existsSync(file)) throw new ModelLoadError(file, "file not found");
  if (statSync(file).size === 0) throw new ModelLoadError(file, "empty file, not a GGUF file");
  const mapped = Bun.mmap(file, { shared: false });
  const cursor = new GgufCursor(file, mapped);
  const version = readHeader(cursor);
  // A tensor info takes at least 28 bytes, a key/value 13.
  const tensorCount = cursor.count("tensor count", 28);
  const metadataCount = cursor.count("metadata count", 13);
  const metadata = readMetadata(cursor, metadataCount);
  const alignment = readAlignment(cursor, metadata);

  const infos: RawTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const info = readTensorInfo(cursor, i);
    if (names.has(info.name)) cursor.fail(`tensor "${info.name}" is listed twice`);
    names.add(info.name);
    infos.push(info);
  }
  cursor.alignTo(alignment);
  const dataStart = Math.min(cursor.position, mapped.byteLength);
  checkPlacement(cursor, infos, dataStart, alignment);

  const tensors = new Map<string, GgufTensorInfo>();
  for (const { name, type, shape, offset, byteLength } of infos) {
    const start = dataStart + offset;
    tensors.set(name, { name, type, shape, bytes: mapped.subarray(start, start + byteLength) });
  }
  return { file, version, metadata, tensors };
}
