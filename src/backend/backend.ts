// A native backend: one loaded library (CPU or CUDA) and one context on it, with its memory and
// its graphs; the compute ops come from NativeOps (ops.ts). "auto" prefers CUDA and says why it
// fell back when it could not use it.
import { ptr as addressOf, type Pointer } from "bun:ffi";
import { vt_copy_kind } from "../../build/vllm-ts-abi.ts";
import { type Address, addressFrom } from "./address.ts";
import { describeDevice } from "./device-description.ts";
import { captureGraph, type Graph } from "./graph.ts";
import { cpuLibrary, cudaLibraryPath, hasCudaLibrary } from "./library.ts";
import { NativeError, type NativeLibrary, openNativeLibrary } from "./native-library.ts";
import { applyOpenMpDefaults } from "./openmp-env.ts";
import { NativeOps } from "./ops.ts";

export type { Address } from "./address.ts";
export type { Graph } from "./graph.ts";
export { NativeError } from "./native-library.ts";

const copyKind = {
  hostToDevice: vt_copy_kind.VT_COPY_HOST_TO_DEVICE,
  deviceToHost: vt_copy_kind.VT_COPY_DEVICE_TO_HOST,
  deviceToDevice: vt_copy_kind.VT_COPY_DEVICE_TO_DEVICE,
} as const;
export type CopyKind = keyof typeof copyKind;

export interface BackendOptions {
  /** "auto" picks CUDA when a GPU is present, the CPU otherwise. */
  device?: "auto" | "cpu" | "cuda";
  /** CPU worker threads; 0 = all cores. */
  numThreads?: number;
  /** Load this library file instead of the embedded one (tests of alternative builds); the
   * environment variable VLLM_TS_LIBRARY does the same for a whole process. */
  libraryPath?: string;
}

/** The host address of an array's bytes, for copies to and from the device. */
function hostAddress(view: ArrayBufferView): Address | null {
  return view.byteLength === 0 ? null : addressOf(view as DataView);
}

/** A library Backend.open tries, located only when its turn comes: the CPU's variant choice can
 * fail (a CPU without AVX2) and must then fail that candidate alone. */
interface LibraryCandidate {
  label: string;
  locate: () => Promise<{ path: string; cpuKernels: string | null }>;
}

/** The embedded libraries for `device`, in the order they are tried. */
function embeddedCandidates(device: NonNullable<BackendOptions["device"]>): LibraryCandidate[] {
  const candidates: LibraryCandidate[] = [];
  if (device !== "cpu" && hasCudaLibrary())
    candidates.push({ label: "cuda", locate: async () => ({ path: await cudaLibraryPath(), cpuKernels: null }) });
  if (device !== "cuda")
    candidates.push({
      label: "cpu",
      locate: async () => {
        const { variant, path } = await cpuLibrary();
        return { path, cpuKernels: variant };
      },
    });
  if (candidates.length === 0) throw new Error(`no native library for device "${device}" in this build (have: cpu)`);
  return candidates;
}

export class Backend extends NativeOps {
  private constructor(
    private readonly lib: NativeLibrary,
    context: Pointer,
    readonly name: string,
    readonly deviceName: string,
    /** The embedded CPU library's variant this backend runs (cpu-variant.ts); null on CUDA and for a
     * library given by path. */
    readonly cpuKernels: string | null,
  ) {
    super(lib.symbols, context);
  }

  /** Why a preferred library was passed over for this one ("auto" without a usable GPU), or null. */
  fallbackReason: string | null = null;

  /** The device as progress lines name it (device-description.ts). */
  get description(): string {
    return describeDevice(this.name, this.deviceName, this.cpuKernels);
  }

  static async open(options: BackendOptions = {}): Promise<Backend> {
    const device = options.device ?? "auto";
    const libraryPath = options.libraryPath || process.env.VLLM_TS_LIBRARY;
    const candidates: LibraryCandidate[] = libraryPath
      ? [{ label: libraryPath, locate: async () => ({ path: libraryPath, cpuKernels: null }) }]
      : embeddedCandidates(device);
    const failures: string[] = [];
    for (const { label, locate } of candidates) {
      try {
        const { path, cpuKernels } = await locate();
        const backend = Backend.openLibrary(path, options.numThreads ?? 0, cpuKernels);
        if (failures.length > 0) backend.fallbackReason = failures.join("; ");
        return backend;
      } catch (error) {
        failures.push(`${label}: ${(error as Error).message}`);
      }
    }
    throw new Error(`could not open a native backend for device "${device}":\n  ${failures.join("\n  ")}`);
  }

  private static openLibrary(path: string, numThreads: number, cpuKernels: string | null): Backend {
    applyOpenMpDefaults();
    const lib = openNativeLibrary(path);
    const s = lib.symbols;
    const fail = (message: string): never => {
      lib.close();
      throw new Error(message);
    };
    const check = (op: string, status: number) => {
      if (status !== 0) {
        const detail = String(s.vt_last_error());
        lib.close();
        throw new NativeError(op, status, detail);
      }
    };
    const count = new Int32Array(1);
    check("vt_device_count", s.vt_device_count(count));
    if (count[0] === 0) {
      const reason = String(s.vt_last_error());
      fail(`no device found${reason ? ` (${reason})` : ""}`);
    }
    const out = new BigUint64Array(1);
    check("vt_context_create", s.vt_context_create(0, numThreads, out));
    const context = addressFrom(out[0]!);
    const nameBuffer = new Uint8Array(256);
    check("vt_device_name", s.vt_device_name(context, nameBuffer, nameBuffer.length));
    const deviceName = new TextDecoder().decode(nameBuffer.subarray(0, nameBuffer.indexOf(0)));
    return new Backend(lib, context, String(s.vt_backend_name()), deviceName, cpuKernels);
  }

  close(): void {
    this.check("vt_context_destroy", this.s.vt_context_destroy(this.context));
    this.lib.close();
  }

  // ---- memory -------------------------------------------------------------------------------

  /** Batch-invariant numerics: each row's result independent of the rows batched with it (CPU only). */
  setBatchInvariant(enabled: boolean): void {
    this.check("vt_context_set_batch_invariant", this.s.vt_context_set_batch_invariant(this.context, enabled ? 1 : 0));
  }

  /**
   * Asynchronous ops: on the CPU, the context's ops and graph launches run in order on a thread of
   * its own and return at once, so the host goes on while a step computes (CUDA ops always do).
   */
  setAsync(enabled: boolean): void {
    this.check("vt_context_set_async", this.s.vt_context_set_async(this.context, enabled ? 1 : 0));
  }

  synchronize(): void {
    this.check("vt_synchronize", this.s.vt_synchronize(this.context));
  }

  memoryInfo(): { freeBytes: number; totalBytes: number } {
    const free = new BigUint64Array(1);
    const total = new BigUint64Array(1);
    this.check("vt_memory_info", this.s.vt_memory_info(this.context, free, total));
    return { freeBytes: Number(free[0]), totalBytes: Number(total[0]) };
  }

  malloc(bytes: number): Address {
    const out = new BigUint64Array(1);
    this.check("vt_malloc", this.s.vt_malloc(this.context, bytes, out));
    return addressFrom(out[0]!);
  }

  free(address: Address): void {
    this.check("vt_free", this.s.vt_free(this.context, address));
  }

  mallocHost(bytes: number): Address {
    const out = new BigUint64Array(1);
    this.check("vt_malloc_host", this.s.vt_malloc_host(this.context, bytes, out));
    return addressFrom(out[0]!);
  }

  freeHost(address: Address): void {
    this.check("vt_free_host", this.s.vt_free_host(this.context, address));
  }

  memcpy(dst: Address | null, src: Address | null, bytes: number, kind: CopyKind): void {
    if (bytes === 0) return;
    this.check("vt_memcpy", this.s.vt_memcpy(this.context, dst, src, bytes, copyKind[kind]));
  }

  /** Copy a host array into device memory at `dst`. */
  upload(dst: Address, source: ArrayBufferView): void {
    this.memcpy(dst, hostAddress(source), source.byteLength, "hostToDevice");
  }

  /** Copy device memory at `src` into a host array (waits for pending ops). */
  download<T extends ArrayBufferView>(target: T, src: Address): T {
    this.memcpy(hostAddress(target), src, target.byteLength, "deviceToHost");
    return target;
  }

  memset(address: Address, value: number, bytes: number): void {
    this.check("vt_memset", this.s.vt_memset(this.context, address, value, bytes));
  }

  // ---- graphs ---------------------------------------------------------------------------------

  /** Runs `record` with the ops it enqueues captured into a graph instead of run. */
  captureGraph(record: () => void): Graph {
    return captureGraph(this.s, this.context, record);
  }
}
