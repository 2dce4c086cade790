// The C ABI is written once, in cuda/include/vllm_ts.h: the bun:ffi symbol table is generated from
// it (src/backend/abi-header.ts), and both libraries export exactly the functions it declares.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { cpuVariants } from "#embedded-libraries";
import { ffiParameterType, parseAbiHeader, renderAbiModule } from "../../src/backend/abi-header.ts";

const root = resolve(import.meta.dir, "../..");
const headerText = readFileSync(resolve(root, "cuda/include/vllm_ts.h"), "utf8");
const header = parseAbiHeader(headerText);

/** The vt_ functions a library defines and exports, by `nm`. */
function exportedFunctions(library: string): string[] {
  const result = Bun.spawnSync(["nm", "-D", "--defined-only", resolve(root, library)]);
  return result.stdout
    .toString()
    .split("\n")
    .map((line) => / T (vt_\w+)$/.exec(line)?.[1])
    .filter((name) => name !== undefined)
    .sort();
}

describe("the header's declarations", () => {
  test("every function declaration is read, with each parameter", () => {
    // Independently of the parser: a declaration line starts with its return type and names a vt_ function.
    const declared = [...headerText.matchAll(/^(?:vt_status|const char\*|int32_t) (vt_\w+)\(/gm)].map((m) => m[1]);
    expect(header.functions.map((f) => f.name)).toEqual(declared);
    const matmul = header.functions.find((f) => f.name === "vt_matmul")!;
    expect(matmul.params.map((p) => `${p.type} ${p.name}`)).toEqual([
      "vt_context* ctx",
      "const void* x",
      "const void* w",
      "const void* bias",
      "void* out",
      "int32_t m",
      "int32_t n",
      "int32_t k",
      "vt_dtype act_dtype",
      "vt_dtype weight_dtype",
    ]);
    expect(header.functions.find((f) => f.name === "vt_last_error")).toEqual({
      name: "vt_last_error",
      returns: "const char*",
      params: [],
    });
  });

  test("the version and enums come from the header", () => {
    expect(header.version).toBe(Number(/#define VT_ABI_VERSION (\d+)/.exec(headerText)![1]));
    expect(header.enums.vt_dtype).toEqual({
      VT_F32: 0,
      VT_F16: 1,
      VT_BF16: 2,
      VT_Q8_0: 3,
      VT_Q4_0: 4,
      VT_Q4_K: 5,
      VT_Q5_K: 6,
      VT_Q6_K: 7,
      VT_Q4_1: 8,
      VT_Q5_0: 9,
      VT_Q5_1: 10,
    });
    expect(header.enums.vt_copy_kind!.VT_COPY_DEVICE_TO_DEVICE).toBe(2);
  });

  test("C types map to bun:ffi's: pointers, enums as ints, size_t as 64 bits", () => {
    expect(ffiParameterType("const int32_t*", header.enums)).toBe("ptr");
    expect(ffiParameterType("vt_context**", header.enums)).toBe("ptr");
    expect(ffiParameterType("vt_dtype", header.enums)).toBe("i32");
    expect(ffiParameterType("size_t", header.enums)).toBe("u64");
    expect(ffiParameterType("uint32_t", header.enums)).toBe("u32");
    expect(() => ffiParameterType("double", header.enums)).toThrow(/no bun:ffi type for the C type "double"/);
  });

  test("an enum member without an explicit value is refused", () => {
    expect(() => parseAbiHeader("#define VT_ABI_VERSION 1\ntypedef enum e { A = 0, B } e;")).toThrow(
      /enum e: "B" has no explicit value/,
    );
  });

  test("the generated symbol table of this build is the header's", () => {
    const generated = readFileSync(resolve(root, "build/vllm-ts-abi.ts"), "utf8");
    expect(generated).toBe(renderAbiModule(header, "cuda/include/vllm_ts.h"));
  });
});

describe("the libraries", () => {
  const declared = header.functions.map((f) => f.name).sort();

  for (const variant of cpuVariants)
    test(`the CPU library's ${variant.name} variant exports exactly the header's functions`, () => {
      expect(exportedFunctions(variant.library)).toEqual(declared);
    });

  test("the CUDA kernels' library exports exactly the header's functions", () => {
    expect(exportedFunctions("build/libvllm_ts_cuda_emu.so")).toEqual(declared);
  });
});
