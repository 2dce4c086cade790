// Helpers for the native-op tests: one backend per test file (the CPU library, or the library
// named by VLLM_TS_LIBRARY: `make test` runs these files a second time on the CUDA kernels built
// against the CPU emulation), device buffers uploaded from and downloaded to f32 arrays in any
// storage dtype, freed after each test, and seeded inputs.
import { afterAll, afterEach, expect } from "bun:test";
import { type Address, Backend } from "../../src/backend/backend.ts";
import { type DType, decodeToF32, dtypeBytes, encodeFromF32, roundToDtype } from "../../src/backend/dtype.ts";
import { uniformValue } from "../../src/model/uniform-hash.ts";

/** The NULL pointer, for tests of the native argument checks (the op types take none). */
export const NULL_ADDRESS = 0 as Address;

/** A backend plus the device buffers a test allocated, freed together. */
export class Device {
  private readonly buffers: Address[] = [];

  constructor(readonly backend: Backend) {}

  /** `bytes` of uninitialised device memory. */
  alloc(bytes: number): Address {
    const address = this.backend.malloc(bytes);
    this.buffers.push(address);
    return address;
  }

  /** A device copy of `values` stored as `dtype` (rounded to nearest even). */
  upload(values: Float32Array, dtype: DType = "f32"): Address {
    const bytes = encodeFromF32(values, dtype);
    const address = this.alloc(bytes.byteLength);
    this.backend.upload(address, bytes);
    return address;
  }

  uploadInt32(values: Int32Array | readonly number[]): Address {
    const array = values instanceof Int32Array ? values : Int32Array.from(values);
    const address = this.alloc(array.byteLength);
    this.backend.upload(address, array);
    return address;
  }

  /** `count` elements of `dtype` at `address`, as f32. */
  download(address: Address, count: number, dtype: DType = "f32"): Float32Array {
    const bytes = new Uint8Array(count * dtypeBytes(dtype));
    this.backend.download(bytes, address);
    return decodeToF32(bytes, dtype);
  }

  downloadInt32(address: Address, count: number): Int32Array {
    return this.backend.download(new Int32Array(count), address);
  }

  /**
   * Runs an op with 16-bit activations: the CUDA backend computes it (true); the CPU backend,
   * which computes in f32 only, must refuse it with status 3 (asserted here; false).
   */
  ranWithHalfActivations(op: string, run: () => void): boolean {
    if (this.backend.name === "cuda") {
      run();
      return true;
    }
    expect(run).toThrow(new RegExp(`status 3\\): ${op}: .*f32 only`));
    return false;
  }

  freeAll(): void {
    for (const address of this.buffers.splice(0)) this.backend.free(address);
  }
}

/**
 * Opens the test backend for the calling test file (the CPU library's variant for this machine or
 * the one VLLM_TS_CPU_VARIANT names, unless VLLM_TS_LIBRARY names another library; Backend.open
 * reads both) and frees its buffers after every test.
 */
export async function useTestDevice(): Promise<Device> {
  const backend = await Backend.open({ device: "cpu" });
  const device = new Device(backend);
  afterEach(() => device.freeAll());
  afterAll(() => backend.close());
  return device;
}

/** `count` deterministic values in [-scale, scale), distinct for each seed. */
export function randomValues(count: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = uniformValue(seed, i, scale);
  return out;
}

/** `values` as they read back after being stored as `dtype`. */
export function rounded(values: Float32Array, dtype: DType): Float32Array {
  return values.map((x) => roundToDtype(x, dtype));
}

/**
 * Expects |actual - expected| <= atol + rtol * |expected| elementwise, reporting the worst
 * element so a failure says where and by how much.
 */
export function expectClose(
  actual: Float32Array,
  expected: Float32Array,
  tolerance: { rtol?: number; atol?: number } = {},
): void {
  const rtol = tolerance.rtol ?? 1e-5;
  const atol = tolerance.atol ?? 1e-6;
  expect(actual.length).toBe(expected.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const excess = Math.abs(actual[i]! - expected[i]!) - (atol + rtol * Math.abs(expected[i]!));
    if (!(excess <= worstExcess)) {
      worst = i;
      worstExcess = Number.isNaN(excess) ? Infinity : excess;
    }
  }
  if (worst >= 0)
    throw new Error(
      `element ${worst} of ${actual.length}: got ${actual[worst]}, expected ${expected[worst]} ` +
        `(rtol ${rtol}, atol ${atol})`,
    );
}
