// The GGUF container as a specification: every metadata value type read back as written, tensors
// as views of their bytes with Hugging Face shapes, and each kind of malformed file refused with a
// message that names the file and the problem.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GGML_TYPES, ggmlTypeOfName } from "../../src/model/gguf/ggml-types.ts";
import { readGgufFile } from "../../src/model/gguf/gguf-file.ts";
import { arr, bool, f32, type GgufEntry, type GgufTensorToWrite, ggufBytes, str, u32 } from "../helpers/gguf-writer.ts";

const dir = await mkdtemp(join(tmpdir(), "vllm-ts-gguf-"));
afterAll(() => rm(dir, { recursive: true, force: true }));
let fileCount = 0;

async function written(bytes: Uint8Array): Promise<string> {
  const file = join(dir, `file-${fileCount++}.gguf`);
  await Bun.write(file, bytes);
  return file;
}

function failure(file: string): string {
  try {
    readGgufFile(file);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`${file} was read without error`);
}

const f32Tensor = (name: string, shape: number[], first = 0): GgufTensorToWrite => {
  const values = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => first + i);
  return { name, typeId: 0, shape, data: new Uint8Array(values.buffer) };
};

const TWO_TENSORS = [f32Tensor("a.weight", [3, 5]), f32Tensor("b.weight", [7], 100)];

describe("reading a well-formed file", () => {
  test("metadata of every value type comes back as written", async () => {
    const metadata: Record<string, GgufEntry> = {
      u8: { type: "uint8", value: 255 },
      i8: { type: "int8", value: -128 },
      u16: { type: "uint16", value: 65535 },
      i16: { type: "int16", value: -32768 },
      u32: u32(4294967295),
      i32: { type: "int32", value: -2147483648 },
      f32: f32(0.5),
      yes: bool(true),
      no: bool(false),
      text: str("héllo ▁ 世界"),
      u64: { type: "uint64", value: 18446744073709551615n },
      i64: { type: "int64", value: -9223372036854775808n },
      f64: { type: "float64", value: 1e-300 },
      strings: arr("string", ["a", "", "ü"]),
      floats: arr("float32", [1.5, -2]),
      ints: arr("int32", [1, -1]),
      bools: arr("bool", [true, false]),
      nested: { type: "array", elementType: "array", values: [arr("uint8", [1, 2]), arr("string", ["x"])] },
    };
    const gguf = readGgufFile(await written(ggufBytes(metadata, [])));
    const m = gguf.metadata;
    expect(gguf.version).toBe(3);
    expect([m.get("u8"), m.get("i8"), m.get("u16"), m.get("i16"), m.get("u32"), m.get("i32")]).toEqual([
      255, -128, 65535, -32768, 4294967295, -2147483648,
    ]);
    expect([m.get("f32"), m.get("yes"), m.get("no"), m.get("text")]).toEqual([0.5, true, false, "héllo ▁ 世界"]);
    expect([m.get("u64"), m.get("i64"), m.get("f64")]).toEqual([18446744073709551615n, -9223372036854775808n, 1e-300]);
    expect(m.get("strings")).toEqual(["a", "", "ü"]);
    expect([...(m.get("floats") as Float32Array)]).toEqual([1.5, -2]);
    expect([...(m.get("ints") as Int32Array)]).toEqual([1, -1]);
    expect(m.get("bools")).toEqual([true, false]);
    const nested = m.get("nested") as unknown[];
    expect([...(nested[0] as Uint8Array)]).toEqual([1, 2]);
    expect(nested[1]).toEqual(["x"]);
  });

  test("tensors have Hugging Face shapes and their own bytes, at any power-of-two alignment", async () => {
    for (const alignment of [undefined, 8, 64]) {
      const gguf = readGgufFile(await written(ggufBytes({ x: u32(1) }, TWO_TENSORS, { alignment })));
      const a = gguf.tensors.get("a.weight")!;
      expect(a.shape).toEqual([3, 5]);
      expect(a.type.name).toBe("F32");
      expect([...new Float32Array(a.bytes.slice().buffer)]).toEqual(Array.from({ length: 15 }, (_, i) => i));
      const b = gguf.tensors.get("b.weight")!;
      expect([...new Float32Array(b.bytes.slice().buffer)]).toEqual(Array.from({ length: 7 }, (_, i) => 100 + i));
    }
  });

  test("version 2 files read as version 3 ones", async () => {
    const gguf = readGgufFile(await written(ggufBytes({ x: u32(7) }, TWO_TENSORS, { version: 2 })));
    expect(gguf.version).toBe(2);
    expect(gguf.metadata.get("x")).toBe(7);
  });

  test("a quantized tensor's size follows its type's blocks", async () => {
    const q8 = ggmlTypeOfName("Q8_0")!;
    const data = new Uint8Array(2 * 2 * q8.bytesPerBlock).map((_, i) => i);
    const file = await written(ggufBytes({}, [{ name: "q", typeId: q8.id, shape: [2, 64], data }]));
    const tensor = readGgufFile(file).tensors.get("q")!;
    expect(tensor.type.name).toBe("Q8_0");
    expect(tensor.bytes).toEqual(data);
  });

  test("the type table has one entry per id and name, with the documented block sizes", () => {
    expect(new Set(GGML_TYPES.map((t) => t.id)).size).toBe(GGML_TYPES.length);
    expect(new Set(GGML_TYPES.map((t) => t.name)).size).toBe(GGML_TYPES.length);
    const size = (name: string) => {
      const type = ggmlTypeOfName(name)!;
      return [type.id, type.blockSize, type.bytesPerBlock];
    };
    expect(size("BF16")).toEqual([30, 1, 2]);
    expect(size("Q4_0")).toEqual([2, 32, 18]);
    expect(size("Q8_0")).toEqual([8, 32, 34]);
    expect(size("Q4_K")).toEqual([12, 256, 144]);
    expect(size("Q5_K")).toEqual([13, 256, 176]);
    expect(size("Q6_K")).toEqual([14, 256, 210]);
  });
});

describe("refusing a malformed file", () => {
  const good = ggufBytes({ "general.name": str("x"), tokens: arr("string", ["a", "b"]) }, TWO_TENSORS);

  test("wrong magic, unknown versions and big-endian files are refused by name", async () => {
    expect(failure(await written(ggufBytes({}, [], { magic: "GGML" })))).toContain(
      'not a GGUF file: starts with "GGML"',
    );
    expect(failure(await written(ggufBytes({}, [], { version: 1 })))).toContain("unsupported GGUF version 1");
    expect(failure(await written(ggufBytes({}, [], { version: 4 })))).toContain("unsupported GGUF version 4");
    expect(failure(await written(ggufBytes({}, [], { version: 3 << 24 })))).toContain("big-endian");
    expect(failure(await written(new Uint8Array(0)))).toContain("empty file");
  });

  test("a file cut anywhere before its last tensor's end is refused as truncated, naming the file", async () => {
    const lastTensorEnd = good.byteLength - 4; // b.weight's 28 bytes end 4 bytes of padding early
    for (const cut of [2, 6, 20, 30, 45, 60, 80, 120, 150, good.byteLength - 100, lastTensorEnd - 1]) {
      const file = await written(good.subarray(0, cut));
      const message = failure(file);
      expect(message.startsWith(`${file}: `)).toBe(true);
      expect(message).toMatch(/truncated|past the end|not a GGUF file/);
    }
    expect(readGgufFile(await written(good.subarray(0, lastTensorEnd))).tensors.size).toBe(2);
  });

  test("a string or array claiming more bytes than the file has is refused before allocating", async () => {
    const bytes = ggufBytes({ tokens: arr("string", ["abc"]) }, []);
    const view = new DataView(bytes.buffer);
    // The array length follows magic, version, two counts, the key ("tokens") and two type ids.
    const arrayLengthAt = 4 + 4 + 8 + 8 + 8 + 6 + 4 + 4;
    view.setBigUint64(arrayLengthAt, 1n << 40n, true);
    expect(failure(await written(bytes))).toContain('length of metadata "tokens"');
    view.setBigUint64(arrayLengthAt, 1n, true);
    view.setBigUint64(arrayLengthAt + 8, 1n << 50n, true);
    expect(failure(await written(bytes))).toContain('length of metadata "tokens"[0]');
  });

  test("lying offsets: past the end, misaligned, or overlapping another tensor", async () => {
    const [a, b] = TWO_TENSORS as [GgufTensorToWrite, GgufTensorToWrite];
    expect(failure(await written(ggufBytes({}, [a, { ...b, offset: 160n }])))).toContain(
      'tensor "b.weight": 28 bytes at data offset 160 run past the end',
    );
    expect(failure(await written(ggufBytes({}, [a, { ...b, offset: 1n << 62n }])))).toContain(
      "data offset 4611686018427387904 lies past the end",
    );
    expect(failure(await written(ggufBytes({}, [a, { ...b, offset: 40n }])))).toContain(
      "data offset 40 is not a multiple of the alignment 32",
    );
    expect(failure(await written(ggufBytes({}, [a, { ...b, offset: 32n }])))).toContain(
      'tensors "a.weight" (bytes 0 to 60) and "b.weight" (from 32) overlap',
    );
  });

  test("unknown tensor types, partial blocks, bad dimensions and duplicate names are refused", async () => {
    const [a] = TWO_TENSORS as [GgufTensorToWrite];
    expect(failure(await written(ggufBytes({}, [{ ...a, typeId: 4 }])))).toContain(
      'tensor "a.weight": unknown ggml tensor type 4',
    );
    const q8 = { name: "q", typeId: 8, shape: [2, 48], data: new Uint8Array(2 * 2 * 34) };
    expect(failure(await written(ggufBytes({}, [q8])))).toContain(
      "rows of 48 elements are not a whole number of Q8_0 blocks of 32",
    );
    expect(failure(await written(ggufBytes({}, [{ ...a, shape: [1, 1, 1, 1, 15] }])))).toContain("has 5 dimensions");
    expect(failure(await written(ggufBytes({}, [a, { ...a, offset: 64n }])))).toContain(
      'tensor "a.weight" is listed twice',
    );
  });

  test("an unknown value type, a bool that is not 0 or 1 and a bad alignment are refused", async () => {
    const bytes = ggufBytes({ flag: bool(true) }, []);
    const typeAt = 4 + 4 + 8 + 8 + 8 + 4;
    bytes[typeAt] = 13;
    expect(failure(await written(bytes))).toContain('metadata "flag" at byte');
    expect(failure(await written(bytes))).toContain("unknown value type 13");
    bytes[typeAt] = 7;
    bytes[typeAt + 4] = 2;
    expect(failure(await written(bytes))).toContain("is a bool of value 2");
    expect(failure(await written(ggufBytes({ "general.alignment": u32(24) }, [])))).toContain(
      "general.alignment must be a power of two, got 24",
    );
  });
});
