// A native backend: one loaded library (CPU or CUDA) and one context on it. Every op of
// cuda/include/vllm_ts.h is a method taking named arguments, so call sites read like the header;
// a non-zero status becomes a NativeError carrying vt_last_error().
import { dlopen, ptr as addressOf, type Pointer } from "bun:ffi";
import { dtypeCode, type DType } from "./dtype.ts";
import { availableLibraries, nativeLibraryPath, type LibraryKind } from "./library.ts";
import { applyOpenMpDefaults } from "./openmp-env.ts";
import { vtSymbols } from "./symbols.ts";

/** A device address (or a host address for host-side arguments); 0 is NULL. */
export type Address = number;

const EXPECTED_ABI_VERSION = 2;

const copyKind = { hostToDevice: 0, deviceToHost: 1, deviceToDevice: 2 } as const;
export type CopyKind = keyof typeof copyKind;

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

type Library = ReturnType<typeof dlopen<typeof vtSymbols>>;
type Symbols = Library["symbols"];

export interface BackendOptions {
  /** "auto" picks CUDA when a GPU is present, the CPU otherwise. */
  device?: "auto" | "cpu" | "cuda";
  /** CPU worker threads; 0 = all cores. */
  numThreads?: number;
  /** Load this library file instead of the embedded one (tests of alternative builds); the
   * environment variable VLLM_TS_LIBRARY does the same for a whole process. */
  libraryPath?: string;
}

function hostAddress(view: ArrayBufferView): Address {
  return view.byteLength === 0 ? 0 : (addressOf(view as DataView) as number);
}

export class Backend {
  private constructor(
    private readonly lib: Library,
    private readonly context: Pointer,
    readonly name: string,
    readonly deviceName: string,
  ) {}

  /** Why a preferred library was passed over for this one ("auto" without a usable GPU), or null. */
  fallbackReason: string | null = null;

  static async open(options: BackendOptions = {}): Promise<Backend> {
    const device = options.device ?? "auto";
    const candidates: { label: string; path: string }[] = [];
    const libraryPath = options.libraryPath || process.env.VLLM_TS_LIBRARY;
    if (libraryPath) candidates.push({ label: libraryPath, path: libraryPath });
    else {
      const kinds = availableLibraries();
      const order: LibraryKind[] = device === "cpu" ? ["cpu"] : device === "cuda" ? ["cuda" as LibraryKind] : (["cuda", "cpu"] as LibraryKind[]);
      for (const kind of order) if (kinds.includes(kind)) candidates.push({ label: kind, path: await nativeLibraryPath(kind) });
      if (candidates.length === 0) throw new Error(`no native library for device "${device}" in this build (have: ${kinds.join(", ")})`);
    }
    const failures: string[] = [];
    for (const { label, path } of candidates) {
      try {
        const backend = Backend.openLibrary(path, options.numThreads ?? 0);
        if (failures.length > 0) backend.fallbackReason = failures.join("; ");
        return backend;
      } catch (error) {
        failures.push(`${label}: ${(error as Error).message}`);
      }
    }
    throw new Error(`could not open a native backend for device "${device}":\n  ${failures.join("\n  ")}`);
  }

  private static openLibrary(path: string, numThreads: number): Backend {
    applyOpenMpDefaults();
    const lib = dlopen(path, vtSymbols);
    const s = lib.symbols;
    const abi = s.vt_abi_version();
    if (abi !== EXPECTED_ABI_VERSION) {
      lib.close();
      throw new Error(`ABI version ${abi}, expected ${EXPECTED_ABI_VERSION} (stale build?)`);
    }
    const count = new Int32Array(1);
    const check = (op: string, status: number) => {
      if (status !== 0) {
        const detail = String(s.vt_last_error());
        lib.close();
        throw new NativeError(op, status, detail);
      }
    };
    check("vt_device_count", s.vt_device_count(count));
    if (count[0] === 0) {
      const reason = String(s.vt_last_error());
      lib.close();
      throw new Error(`no device found${reason ? ` (${reason})` : ""}`);
    }
    const out = new BigUint64Array(1);
    check("vt_context_create", s.vt_context_create(0, numThreads, out));
    const context = Number(out[0]) as Pointer;
    const nameBuffer = new Uint8Array(256);
    check("vt_device_name", s.vt_device_name(context, nameBuffer, nameBuffer.length));
    const deviceName = new TextDecoder().decode(nameBuffer.subarray(0, nameBuffer.indexOf(0)));
    return new Backend(lib, context, String(s.vt_backend_name()), deviceName);
  }

  private get s(): Symbols {
    return this.lib.symbols;
  }

  private check(op: string, status: number): void {
    if (status !== 0) throw new NativeError(op, status, String(this.s.vt_last_error()));
  }

  close(): void {
    this.check("vt_context_destroy", this.s.vt_context_destroy(this.context));
    this.lib.close();
  }

  // ---- memory -------------------------------------------------------------------------------

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
    return Number(out[0]);
  }

  free(address: Address): void {
    this.check("vt_free", this.s.vt_free(this.context, address as Pointer));
  }

  mallocHost(bytes: number): Address {
    const out = new BigUint64Array(1);
    this.check("vt_malloc_host", this.s.vt_malloc_host(this.context, bytes, out));
    return Number(out[0]);
  }

  freeHost(address: Address): void {
    this.check("vt_free_host", this.s.vt_free_host(this.context, address as Pointer));
  }

  memcpy(dst: Address, src: Address, bytes: number, kind: CopyKind): void {
    if (bytes === 0) return;
    this.check("vt_memcpy", this.s.vt_memcpy(this.context, dst as Pointer, src as Pointer, bytes, copyKind[kind]));
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
    this.check("vt_memset", this.s.vt_memset(this.context, address as Pointer, value, bytes));
  }

  convert(dst: Address, dstDtype: DType, src: Address, srcDtype: DType, count: number): void {
    this.check(
      "vt_convert",
      this.s.vt_convert(this.context, dst as Pointer, dtypeCode[dstDtype], src as Pointer, dtypeCode[srcDtype], count),
    );
  }

  fillUniform(dst: Address, dtype: DType, count: number, seed: number, scale: number): void {
    this.check(
      "vt_fill_uniform",
      this.s.vt_fill_uniform(this.context, dst as Pointer, dtypeCode[dtype], count, seed >>> 0, scale),
    );
  }

  // ---- model layers ---------------------------------------------------------------------------

  embedding(a: {
    tokenIds: Address; numTokens: number; table: Address; vocabSize: number; hiddenSize: number;
    out: Address; weightDtype: DType; actDtype: DType;
  }): void {
    this.check("vt_embedding", this.s.vt_embedding(
      this.context, a.tokenIds as Pointer, a.numTokens, a.table as Pointer, a.vocabSize, a.hiddenSize,
      a.out as Pointer, dtypeCode[a.weightDtype], dtypeCode[a.actDtype]));
  }

  rmsNorm(a: {
    input: Address; residual: Address | null; weight: Address; out: Address; numTokens: number;
    hiddenSize: number; eps: number; actDtype: DType; weightDtype: DType;
  }): void {
    this.check("vt_rms_norm", this.s.vt_rms_norm(
      this.context, a.input as Pointer, (a.residual ?? 0) as Pointer, a.weight as Pointer, a.out as Pointer,
      a.numTokens, a.hiddenSize, a.eps, dtypeCode[a.actDtype], dtypeCode[a.weightDtype]));
  }

  headRmsNorm(a: {
    x: Address; weight: Address; numTokens: number; numHeads: number; headDim: number;
    rowStride: number; eps: number; actDtype: DType; weightDtype: DType;
  }): void {
    this.check("vt_head_rms_norm", this.s.vt_head_rms_norm(
      this.context, a.x as Pointer, a.weight as Pointer, a.numTokens, a.numHeads, a.headDim, a.rowStride,
      a.eps, dtypeCode[a.actDtype], dtypeCode[a.weightDtype]));
  }

  ropeCosSinCache(a: {
    cosSin: Address; maxPosition: number; rotaryDim: number; theta: number;
    llama3?: { factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPosition: number } | null;
  }): void {
    const l = a.llama3;
    this.check("vt_rope_cos_sin_cache", this.s.vt_rope_cos_sin_cache(
      this.context, a.cosSin as Pointer, a.maxPosition, a.rotaryDim, a.theta, l ? 1 : 0,
      l?.factor ?? 1, l?.lowFreqFactor ?? 1, l?.highFreqFactor ?? 1, l?.originalMaxPosition ?? 0));
  }

  rotaryEmbedding(a: {
    positions: Address; q: Address; k: Address; cosSin: Address; numTokens: number; numQHeads: number;
    numKvHeads: number; headDim: number; rotaryDim: number; rowStride: number; actDtype: DType;
  }): void {
    this.check("vt_rotary_embedding", this.s.vt_rotary_embedding(
      this.context, a.positions as Pointer, a.q as Pointer, a.k as Pointer, a.cosSin as Pointer, a.numTokens,
      a.numQHeads, a.numKvHeads, a.headDim, a.rotaryDim, a.rowStride, dtypeCode[a.actDtype]));
  }

  siluAndMul(a: { x: Address; out: Address; numTokens: number; d: number; actDtype: DType }): void {
    this.check("vt_silu_and_mul", this.s.vt_silu_and_mul(
      this.context, a.x as Pointer, a.out as Pointer, a.numTokens, a.d, dtypeCode[a.actDtype]));
  }

  matmul(a: {
    x: Address; w: Address; bias?: Address | null; out: Address; m: number; n: number; k: number;
    actDtype: DType; weightDtype: DType;
  }): void {
    this.check("vt_matmul", this.s.vt_matmul(
      this.context, a.x as Pointer, a.w as Pointer, (a.bias ?? 0) as Pointer, a.out as Pointer, a.m, a.n, a.k,
      dtypeCode[a.actDtype], dtypeCode[a.weightDtype]));
  }

  gatherRows(a: { dst: Address; src: Address; indices: Address; numRows: number; rowBytes: number }): void {
    this.check("vt_gather_rows", this.s.vt_gather_rows(
      this.context, a.dst as Pointer, a.src as Pointer, a.indices as Pointer, a.numRows, a.rowBytes));
  }

  // ---- paged KV cache -------------------------------------------------------------------------

  writeKvCache(a: {
    k: Address; v: Address; kCache: Address; vCache: Address; slotMapping: Address; numTokens: number;
    numKvHeads: number; headDim: number; rowStride: number; blockSize: number; actDtype: DType; cacheDtype: DType;
  }): void {
    this.check("vt_write_kv_cache", this.s.vt_write_kv_cache(
      this.context, a.k as Pointer, a.v as Pointer, a.kCache as Pointer, a.vCache as Pointer,
      a.slotMapping as Pointer, a.numTokens, a.numKvHeads, a.headDim, a.rowStride, a.blockSize,
      dtypeCode[a.actDtype], dtypeCode[a.cacheDtype]));
  }

  pagedAttention(a: {
    out: Address; q: Address; kCache: Address; vCache: Address; blockTables: Address; seqLens: Address;
    queryStartLoc: Address; numSeqs: number; numTokens: number; maxQueryLen: number; maxSeqLen: number;
    maxBlocksPerSeq: number; numQHeads: number; numKvHeads: number; headDim: number; qRowStride: number;
    blockSize: number; scale: number; slidingWindow: number; actDtype: DType; cacheDtype: DType;
  }): void {
    this.check("vt_paged_attention", this.s.vt_paged_attention(
      this.context, a.out as Pointer, a.q as Pointer, a.kCache as Pointer, a.vCache as Pointer,
      a.blockTables as Pointer, a.seqLens as Pointer, a.queryStartLoc as Pointer, a.numSeqs, a.numTokens,
      a.maxQueryLen, a.maxSeqLen, a.maxBlocksPerSeq, a.numQHeads, a.numKvHeads, a.headDim, a.qRowStride,
      a.blockSize, a.scale, a.slidingWindow, dtypeCode[a.actDtype], dtypeCode[a.cacheDtype]));
  }

  copyBlocks(a: {
    cache: Address; numPlanes: number; planeStrideBytes: number; blockBytes: number; blockPairs: Address;
    numPairs: number;
  }): void {
    this.check("vt_copy_blocks", this.s.vt_copy_blocks(
      this.context, a.cache as Pointer, a.numPlanes, a.planeStrideBytes, a.blockBytes, a.blockPairs as Pointer,
      a.numPairs));
  }

  /** blockPairs is a host array of (src, dst) block pairs. */
  swapBlocks(a: {
    dst: Address; dstPlaneStrideBytes: number; src: Address; srcPlaneStrideBytes: number; numPlanes: number;
    blockBytes: number; blockPairs: Int32Array; kind: "deviceToHost" | "hostToDevice";
  }): void {
    this.check("vt_swap_blocks", this.s.vt_swap_blocks(
      this.context, a.dst as Pointer, a.dstPlaneStrideBytes, a.src as Pointer, a.srcPlaneStrideBytes,
      a.numPlanes, a.blockBytes, a.blockPairs, a.blockPairs.length / 2, copyKind[a.kind]));
  }

  // ---- sampling helpers -----------------------------------------------------------------------

  argmax(a: { logits: Address; out: Address; numRows: number; vocabSize: number; actDtype: DType }): void {
    this.check("vt_argmax", this.s.vt_argmax(
      this.context, a.logits as Pointer, a.out as Pointer, a.numRows, a.vocabSize, dtypeCode[a.actDtype]));
  }

  logSoftmax(a: {
    logits: Address; temperatures: Address | null; out: Address; numRows: number; vocabSize: number; actDtype: DType;
  }): void {
    this.check("vt_log_softmax", this.s.vt_log_softmax(
      this.context, a.logits as Pointer, (a.temperatures ?? 0) as Pointer, a.out as Pointer, a.numRows,
      a.vocabSize, dtypeCode[a.actDtype]));
  }

  /** One token per row drawn on the device (see vt_sample); every array is a device address. */
  sample(a: {
    logits: Address; numRows: number; vocabSize: number; actDtype: DType; temperatures: Address; topK: Address;
    topP: Address; minP: Address; uniforms: Address; out: Address;
  }): void {
    this.check("vt_sample", this.s.vt_sample(
      this.context, a.logits as Pointer, a.numRows, a.vocabSize, dtypeCode[a.actDtype], a.temperatures as Pointer,
      a.topK as Pointer, a.topP as Pointer, a.minP as Pointer, a.uniforms as Pointer, a.out as Pointer));
  }

  // ---- graphs ---------------------------------------------------------------------------------

  /** Whether this backend records graphs (CUDA); the CPU runs every op as it is called. */
  get supportsGraphs(): boolean {
    return this.name === "cuda";
  }

  /** Runs `record` with the ops it enqueues captured into a graph instead of run. */
  captureGraph(record: () => void): Graph {
    this.check("vt_graph_begin_capture", this.s.vt_graph_begin_capture(this.context));
    let failure: unknown = null;
    try {
      record();
    } catch (error) {
      failure = error;
    }
    // The capture ends whatever happened, or the stream would stay in capture mode.
    const out = new BigUint64Array(1);
    const status = this.s.vt_graph_end_capture(this.context, out);
    const handle = Number(out[0]) as Pointer;
    if (failure !== null) {
      if (status === 0) this.s.vt_graph_destroy(this.context, handle);
      throw failure;
    }
    this.check("vt_graph_end_capture", status);
    return new Graph(
      handle,
      (g) => this.check("vt_graph_launch", this.s.vt_graph_launch(this.context, g)),
      (g) => this.check("vt_graph_destroy", this.s.vt_graph_destroy(this.context, g)),
    );
  }
}

/** A recorded sequence of ops; launch() replays it on the backend's stream. */
export class Graph {
  private destroyed = false;

  constructor(
    private readonly handle: Pointer,
    private readonly launchHandle: (graph: Pointer) => void,
    private readonly destroyHandle: (graph: Pointer) => void,
  ) {}

  launch(): void {
    if (this.destroyed) throw new Error("graph already destroyed");
    this.launchHandle(this.handle);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.destroyHandle(this.handle);
  }
}
