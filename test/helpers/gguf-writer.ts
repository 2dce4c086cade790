// A small GGUF writer for tests, written from the format's description and independent of the
// reader in src/model/gguf/: header, typed metadata, tensor infos, aligned data. Offsets, version
// and magic can be overridden so tests can write the malformed files a reader must refuse.

export type GgufScalarType =
  | "uint8"
  | "int8"
  | "uint16"
  | "int16"
  | "uint32"
  | "int32"
  | "float32"
  | "bool"
  | "string"
  | "uint64"
  | "int64"
  | "float64";

const TYPE_IDS: Record<GgufScalarType | "array", number> = {
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
};

/** A metadata value with its GGUF type spelled out. */
export type GgufEntry =
  | { type: GgufScalarType; value: number | bigint | boolean | string }
  | {
      type: "array";
      elementType: GgufScalarType | "array";
      values: GgufEntry[] | (number | bigint | boolean | string)[];
    };

export const u32 = (value: number): GgufEntry => ({ type: "uint32", value });
export const f32 = (value: number): GgufEntry => ({ type: "float32", value });
export const str = (value: string): GgufEntry => ({ type: "string", value });
export const bool = (value: boolean): GgufEntry => ({ type: "bool", value });
export const arr = (elementType: GgufScalarType, values: (number | bigint | boolean | string)[]): GgufEntry => ({
  type: "array",
  elementType,
  values,
});

export interface GgufTensorToWrite {
  name: string;
  /** ggml type id: 0 F32, 1 F16, 30 BF16, 8 Q8_0, ... */
  typeId: number;
  /** Outermost first, as Hugging Face writes it (the file lists it reversed). */
  shape: number[];
  data: Uint8Array;
  /** Written instead of the offset the writer would choose (for lying files). */
  offset?: bigint;
}

export interface GgufWriteOptions {
  version?: number;
  magic?: string;
  /** Written as general.alignment when given; the data are aligned to it either way. */
  alignment?: number;
}

type ScalarWriter = [size: number, write: (view: DataView, value: number | bigint | boolean | string) => void];

const SCALAR_WRITERS: Record<Exclude<GgufScalarType, "string">, ScalarWriter> = {
  uint8: [1, (v, x) => v.setUint8(0, Number(x))],
  int8: [1, (v, x) => v.setInt8(0, Number(x))],
  uint16: [2, (v, x) => v.setUint16(0, Number(x), true)],
  int16: [2, (v, x) => v.setInt16(0, Number(x), true)],
  uint32: [4, (v, x) => v.setUint32(0, Number(x), true)],
  int32: [4, (v, x) => v.setInt32(0, Number(x), true)],
  float32: [4, (v, x) => v.setFloat32(0, Number(x), true)],
  bool: [1, (v, x) => v.setUint8(0, x ? 1 : 0)],
  uint64: [8, (v, x) => v.setBigUint64(0, BigInt(x as number | bigint), true)],
  int64: [8, (v, x) => v.setBigInt64(0, BigInt(x as number | bigint), true)],
  float64: [8, (v, x) => v.setFloat64(0, Number(x), true)],
};

class ByteSink {
  private chunks: Uint8Array[] = [];
  length = 0;

  bytes(data: Uint8Array): void {
    this.chunks.push(data);
    this.length += data.byteLength;
  }
  private scalar(size: number, write: (view: DataView) => void): void {
    const buffer = new Uint8Array(size);
    write(new DataView(buffer.buffer));
    this.bytes(buffer);
  }
  u32(value: number): void {
    this.scalar(4, (v) => v.setUint32(0, value, true));
  }
  u64(value: number | bigint): void {
    this.scalar(8, (v) => v.setBigUint64(0, BigInt(value), true));
  }
  string(value: string): void {
    const encoded = new TextEncoder().encode(value);
    this.u64(encoded.byteLength);
    this.bytes(encoded);
  }
  scalarValue(type: GgufScalarType, value: number | bigint | boolean | string): void {
    if (type === "string") this.string(String(value));
    else {
      const [size, write] = SCALAR_WRITERS[type];
      this.scalar(size, (view) => write(view, value));
    }
  }
  entry(entry: GgufEntry): void {
    if (entry.type !== "array") {
      this.scalarValue(entry.type, entry.value);
      return;
    }
    this.u32(TYPE_IDS[entry.elementType]);
    this.u64(entry.values.length);
    for (const value of entry.values) {
      if (entry.elementType === "array") {
        const nested = value as GgufEntry;
        this.entry(nested);
      } else this.scalarValue(entry.elementType, value as number | string);
    }
  }
  pad(alignment: number): void {
    const padding = (alignment - (this.length % alignment)) % alignment;
    if (padding > 0) this.bytes(new Uint8Array(padding));
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, at);
      at += chunk.byteLength;
    }
    return out;
  }
}

export function ggufBytes(
  metadata: Record<string, GgufEntry>,
  tensors: GgufTensorToWrite[],
  options: GgufWriteOptions = {},
): Uint8Array {
  const alignment = options.alignment ?? 32;
  const entries = Object.entries(metadata);
  if (options.alignment !== undefined) entries.push(["general.alignment", u32(options.alignment)]);
  const sink = new ByteSink();
  sink.bytes(new TextEncoder().encode(options.magic ?? "GGUF"));
  sink.u32(options.version ?? 3);
  sink.u64(tensors.length);
  sink.u64(entries.length);
  for (const [key, entry] of entries) {
    sink.string(key);
    sink.u32(TYPE_IDS[entry.type]);
    sink.entry(entry);
  }
  let offset = 0;
  for (const tensor of tensors) {
    sink.string(tensor.name);
    sink.u32(tensor.shape.length);
    for (const dim of tensor.shape.toReversed()) sink.u64(dim);
    sink.u32(tensor.typeId);
    sink.u64(tensor.offset ?? BigInt(offset));
    offset += Math.ceil(tensor.data.byteLength / alignment) * alignment;
  }
  sink.pad(alignment);
  for (const tensor of tensors) {
    sink.bytes(tensor.data);
    sink.pad(alignment);
  }
  return sink.concat();
}
