// llama.cpp's own quantizers and dequantizers, from its prebuilt libggml-base (`make llama-cpp`
// puts it under build/llama.cpp), for tests that hold this project's formats to llama.cpp's.
// Optional: without the library, `ggml` is null and `missingReason` says how to get it.
import { dlopen, FFIType, ptr } from "bun:ffi";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { QuantFormat } from "../../src/backend/weight-format.ts";

const LIBRARY = resolve(import.meta.dir, "../../build/llama.cpp/lib/libggml-base.so");

const ROW_FUNCTIONS = {
  q8_0: "q8_0",
  q4_0: "q4_0",
  q4_1: "q4_1",
  q5_0: "q5_0",
  q5_1: "q5_1",
  q4_k: "q4_K",
  q5_k: "q5_K",
  q6_k: "q6_K",
} as const satisfies Record<QuantFormat, string>;

const row = { args: [FFIType.ptr, FFIType.ptr, FFIType.i64], returns: FFIType.void } as const;

function open() {
  const symbols = Object.fromEntries(
    Object.values(ROW_FUNCTIONS).flatMap((name) => [
      [`quantize_row_${name}_ref`, row],
      [`dequantize_row_${name}`, row],
    ]),
  );
  return dlopen(LIBRARY, symbols).symbols as Record<string, (a: unknown, b: unknown, k: number) => void>;
}

export const missingReason = existsSync(LIBRARY)
  ? null
  : `llama.cpp's libggml-base is not installed (run \`make llama-cpp\`): ${LIBRARY}`;

const symbols = missingReason === null ? open() : null;

/** llama.cpp's reference quantizer (quantize_row_*_ref): values to `format`'s blocks. */
export function ggmlQuantize(format: QuantFormat, values: Float32Array, blockBytes: number, blockElements: number) {
  const out = new Uint8Array((values.length / blockElements) * blockBytes);
  symbols![`quantize_row_${ROW_FUNCTIONS[format]}_ref`]!(ptr(values), ptr(out), values.length);
  return out;
}

/** llama.cpp's dequantizer (dequantize_row_*): blocks to `count` values. */
export function ggmlDequantize(format: QuantFormat, blocks: Uint8Array, count: number): Float32Array {
  const out = new Float32Array(count);
  symbols![`dequantize_row_${ROW_FUNCTIONS[format]}`]!(ptr(blocks), ptr(out), count);
  return out;
}
