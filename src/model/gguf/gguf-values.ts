// GGUF's metadata value types and how each is read. 64-bit integers stay bigints (a file may hold
// any u64); numeric arrays become typed arrays, since a vocabulary's scores and token types run to
// 150k entries; arrays of strings, booleans or arrays become plain arrays.
import type { GgufCursor } from "./gguf-cursor.ts";

export const GGUF_VALUE_TYPES = [
  "uint8",
  "int8",
  "uint16",
  "int16",
  "uint32",
  "int32",
  "float32",
  "bool",
  "string",
  "array",
  "uint64",
  "int64",
  "float64",
] as const;

export type GgufValueType = (typeof GGUF_VALUE_TYPES)[number];

export type GgufNumericArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | BigUint64Array
  | BigInt64Array
  | Float64Array;

export type GgufValue = number | bigint | boolean | string | GgufNumericArray | GgufValue[];

/** Fixed element sizes; a string takes at least its 8-byte length. */
const MIN_BYTES: Record<GgufValueType, number> = {
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  uint32: 4,
  int32: 4,
  float32: 4,
  bool: 1,
  string: 8,
  array: 12,
  uint64: 8,
  int64: 8,
  float64: 8,
};

const TYPED_ARRAYS = {
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float32: Float32Array,
  uint64: BigUint64Array,
  int64: BigInt64Array,
  float64: Float64Array,
} as const;

export function readValueType(cursor: GgufCursor, what: string): GgufValueType {
  const at = cursor.position;
  const id = cursor.u32(`value type of ${what}`);
  const type = GGUF_VALUE_TYPES[id];
  if (type === undefined) cursor.fail(`${what} at byte ${at} has unknown value type ${id}`);
  return type;
}

export function readValue(cursor: GgufCursor, type: GgufValueType, what: string): GgufValue {
  switch (type) {
    case "uint8":
      return cursor.u8(what);
    case "int8":
      return cursor.i8(what);
    case "uint16":
      return cursor.u16(what);
    case "int16":
      return cursor.i16(what);
    case "uint32":
      return cursor.u32(what);
    case "int32":
      return cursor.i32(what);
    case "float32":
      return cursor.f32(what);
    case "uint64":
      return cursor.u64(what);
    case "int64":
      return cursor.i64(what);
    case "float64":
      return cursor.f64(what);
    case "bool": {
      const at = cursor.position;
      const byte = cursor.u8(what);
      if (byte > 1) cursor.fail(`${what} at byte ${at} is a bool of value ${byte}, not 0 or 1`);
      return byte === 1;
    }
    case "string":
      return cursor.string(what);
    case "array":
      return readArray(cursor, what);
  }
}

function readArray(cursor: GgufCursor, what: string): GgufValue {
  const elementType = readValueType(cursor, `elements of ${what}`);
  const length = cursor.count(`length of ${what}`, MIN_BYTES[elementType]);
  if (elementType in TYPED_ARRAYS) {
    const TypedArray = TYPED_ARRAYS[elementType as keyof typeof TYPED_ARRAYS];
    const byteLength = length * TypedArray.BYTES_PER_ELEMENT;
    cursor.need(byteLength, what);
    // Copied out, since the file's offset need not be aligned for the element type.
    const copy = cursor.bytes.slice(cursor.position, cursor.position + byteLength);
    cursor.position += byteLength;
    return new TypedArray(copy.buffer);
  }
  const values: GgufValue[] = new Array(length);
  for (let i = 0; i < length; i++) values[i] = readValue(cursor, elementType, `${what}[${i}]`);
  return values;
}
