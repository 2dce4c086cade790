// One native library loaded through bun:ffi with the symbol table generated from the C ABI's
// header, its ABI version checked, and the statuses its calls return turned into errors that
// carry vt_last_error().
import { dlopen } from "bun:ffi";
import { ABI_VERSION, vtSymbols } from "../../build/vllm-ts-abi.ts";

export type NativeLibrary = ReturnType<typeof dlopen<typeof vtSymbols>>;
export type NativeSymbols = NativeLibrary["symbols"];

export class NativeError extends Error {
  constructor(
    readonly op: string,
    readonly status: number,
    detail: string,
  ) {
    super(`${op} failed (status ${status}): ${detail}`);
    this.name = "NativeError";
  }
}

/** Throws a NativeError for a non-zero status of `op`. */
export function checkStatus(symbols: NativeSymbols, op: string, status: number): void {
  if (status !== 0) throw new NativeError(op, status, String(symbols.vt_last_error()));
}

/** dlopen `path`, refusing a library built for another version of the ABI (a stale build). */
export function openNativeLibrary(path: string): NativeLibrary {
  const library = dlopen(path, vtSymbols);
  const version = library.symbols.vt_abi_version();
  if (version !== ABI_VERSION) {
    library.close();
    throw new Error(`ABI version ${version}, expected ${ABI_VERSION} (stale build?)`);
  }
  return library;
}
