// Two matmul paths on one CUDA device: the library's default (cuBLAS when it finds libcublas at
// context creation) and our own kernels, which a context created while VT_DISABLE_CUBLAS=1 is
// set uses instead (cuda/gpu/blas.cu reads it in vt_context_create).
//
// So the "own kernels" backend is a second Backend.open of the same library with the variable
// set around the call. Opening the same path twice is fine: dlopen counts references and returns
// the same handle, each Backend creates its own context, and closing one leaves the other's
// symbols loaded (checked on the emulated CUDA library by test/cli/bench-kernels.test.ts). The
// variable goes through libc's setenv, because Bun's process.env writes do not reach the C
// environment that getenv reads.
import { dlopen } from "bun:ffi";
import { Backend, type BackendOptions } from "../../backend/backend.ts";

const DISABLE = "VT_DISABLE_CUBLAS";

const cString = (text: string) => Buffer.from(`${text}\0`);

function openLibc() {
  try {
    return dlopen("libc.so.6", {
      getenv: { args: ["ptr"], returns: "cstring" },
      setenv: { args: ["ptr", "ptr", "i32"], returns: "i32" },
      unsetenv: { args: ["ptr"], returns: "i32" },
    });
  } catch (error) {
    throw new Error(
      `cannot set ${DISABLE} for the own-kernels backend (libc.so.6: ${(error as Error).message}); run with ${DISABLE}=1 to time our kernels alone`,
    );
  }
}

/** Whether the C environment disables cuBLAS already (then the default path is our kernels too). */
export function cublasDisabledByEnvironment(): boolean {
  const value = process.env[DISABLE];
  return value !== undefined && value !== "" && value !== "0";
}

/**
 * A second backend on the same library whose context runs our own matmul kernels. `open` is
 * Backend.open but for the tests, which check what the C environment holds during the call.
 */
export async function openOwnKernelsBackend(
  options: BackendOptions,
  open: (options: BackendOptions) => Promise<Backend> = (o) => Backend.open(o),
): Promise<Backend> {
  const libc = openLibc();
  const name = cString(DISABLE);
  const previous = libc.symbols.getenv(name);
  const before = previous === null ? null : String(previous);
  libc.symbols.setenv(name, cString("1"), 1);
  try {
    return await open(options);
  } finally {
    if (before === null) libc.symbols.unsetenv(name);
    else libc.symbols.setenv(name, cString(before), 1);
    libc.close();
  }
}

/**
 * Whether libcublas can be loaded in this process under the names the CUDA library tries
 * (libcublas.so.13, then .12): then the default path is cuBLAS on a GPU. The emulated CUDA
 * library never uses cuBLAS, whatever this says.
 */
export function cublasLoadable(): boolean {
  for (const name of ["libcublas.so.13", "libcublas.so.12"]) {
    try {
      dlopen(name, { cublasCreate_v2: { args: ["ptr"], returns: "i32" } }).close();
      return true;
    } catch {
      // not under this name
    }
  }
  return false;
}
