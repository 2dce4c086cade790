// The CPU backend's library, context and memory ops: allocation, copies, fills and dtype
// conversion, checked bit for bit where the header promises exact results.
import { describe, expect, test } from "bun:test";
import { offsetAddress } from "../../src/backend/address.ts";
import { NativeError } from "../../src/backend/backend.ts";
import { dtypeBytes, encodeFromF32, f32ToBf16Bits, f32ToF16Bits } from "../../src/backend/dtype.ts";
import { fillUniform } from "../../src/reference/ops.ts";
import { randomValues, rounded, useTestDevice } from "../helpers/native.ts";

const device = await useTestDevice();
const backend = device.backend;

function f32Bits(values: number[]): Uint32Array {
  return new Uint32Array(Float32Array.from(values).buffer);
}

describe("library and context", () => {
  test("reports its backend and a device name (the CPU and the emulation give their thread count)", () => {
    expect(["cpu", "cuda"]).toContain(backend.name);
    if (backend.name === "cpu" || backend.deviceName.startsWith("CUDA emulation"))
      expect(backend.deviceName).toMatch(/\(\d+ threads\)$/);
    else expect(backend.deviceName.length).toBeGreaterThan(0);
  });

  test("reports free memory no larger than the total", () => {
    const { freeBytes, totalBytes } = backend.memoryInfo();
    expect(totalBytes).toBeGreaterThan(0);
    expect(freeBytes).toBeGreaterThan(0);
    expect(freeBytes).toBeLessThanOrEqual(totalBytes);
  });

  test("synchronize succeeds", () => {
    expect(() => backend.synchronize()).not.toThrow();
  });
});

describe("allocation", () => {
  test("returns 64-byte aligned memory (256 on CUDA), huge-page aligned for large CPU buffers", () => {
    const alignment = backend.name === "cuda" ? 256 : 64;
    for (const bytes of [1, 100, 4096, 3 << 20]) expect(device.alloc(bytes) % alignment).toBe(0);
    if (backend.name === "cpu") expect(device.alloc(5 << 20) % (2 << 20)).toBe(0);
  });

  test("a zero-byte allocation is a distinct, freeable pointer", () => {
    const a = device.alloc(0);
    const b = device.alloc(0);
    expect(a).not.toBe(0);
    expect(a).not.toBe(b);
  });

  test("an impossible allocation fails with out-of-memory instead of crashing", () => {
    let error: unknown;
    try {
      backend.malloc(2 ** 52);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(NativeError);
    expect((error as NativeError).status).toBe(2);
    expect((error as NativeError).message).toContain("vt_malloc");
  });

  test("host memory allocates and frees", () => {
    const host = backend.mallocHost(1000);
    expect(host % 64).toBe(0);
    backend.freeHost(host);
  });
});

describe("copies and fills", () => {
  test("host to device, device to device and back preserve every byte of a large buffer", () => {
    const values = randomValues((8 << 20) / 4 + 3, 1);
    const first = device.upload(values);
    const second = device.alloc(values.byteLength);
    backend.memcpy(second, first, values.byteLength, "deviceToDevice");
    expect(device.download(second, values.length)).toEqual(values);
  });

  test("memset sets every byte of small and large ranges", () => {
    for (const bytes of [13, (4 << 20) + 5]) {
      const address = device.alloc(bytes);
      backend.memset(address, 0xab, bytes);
      const out = backend.download(new Uint8Array(bytes), address);
      expect(out.every((b) => b === 0xab)).toBe(true);
    }
  });
});

describe("vt_convert", () => {
  // 1 + 2^-8 is halfway between two bf16 values and rounds to the even one (1.0); 1 + 3 * 2^-8
  // rounds up to the even 1 + 2^-6; just above halfway rounds up.
  const bf16Cases: [number, number][] = [
    [1 + 2 ** -8, 0x3f80],
    [1 + 3 * 2 ** -8, 0x3f82],
    [1 + 2 ** -8 + 2 ** -20, 0x3f81],
    [-2.5, 0xc020],
    [Infinity, 0x7f80],
    [3.4028234663852886e38, 0x7f80],
    [0, 0x0000],
  ];
  // f16: halfway cases at 1, overflow by rounding (65520 -> inf), 65519 -> max finite, and
  // subnormals (2^-25 is halfway between 0 and the smallest subnormal and rounds to 0).
  const f16Cases: [number, number][] = [
    [1 + 2 ** -11, 0x3c00],
    [1 + 3 * 2 ** -11, 0x3c02],
    [65520, 0x7c00],
    [65519, 0x7bff],
    [2 ** -24, 0x0001],
    [2 ** -25, 0x0000],
    [3 * 2 ** -26, 0x0001],
    [-0.333251953125, 0xb555],
  ];

  for (const [name, dtype, cases, toBits] of [
    ["bf16", "bf16", bf16Cases, f32ToBf16Bits],
    ["f16", "f16", f16Cases, f32ToF16Bits],
  ] as const) {
    test(`f32 to ${name} rounds to nearest even`, () => {
      const values = Float32Array.from(cases.map(([x]) => x));
      const src = device.upload(values);
      const dst = device.alloc(values.length * 2);
      backend.convert(dst, dtype, src, "f32", values.length);
      const bits = backend.download(new Uint16Array(values.length), dst);
      expect(Array.from(bits)).toEqual(cases.map(([, b]) => b));
      expect(Array.from(bits)).toEqual(Array.from(values, (x) => toBits(x)));
    });
  }

  test("NaN stays NaN in every dtype", () => {
    const src = device.upload(Float32Array.of(NaN, -NaN));
    for (const dtype of ["f16", "bf16"] as const) {
      const dst = device.alloc(4);
      backend.convert(dst, dtype, src, "f32", 2);
      expect(Array.from(device.download(dst, 2, dtype)).every(Number.isNaN)).toBe(true);
    }
  });

  test("converts between every pair of dtypes, rounding only when narrowing", () => {
    const values = rounded(randomValues(5000, 7, 100), "f16");
    for (const [from, to] of [
      ["f16", "f32"],
      ["f16", "bf16"],
      ["bf16", "f16"],
      ["bf16", "f32"],
      ["f32", "f32"],
      ["f16", "f16"],
    ] as const) {
      const source = rounded(values, from);
      const src = device.upload(source, from);
      const dst = device.alloc(values.length * 4);
      backend.convert(dst, to, src, from, values.length);
      expect(device.download(dst, values.length, to)).toEqual(rounded(source, to));
    }
  });

  // Offsets of one element put both buffers off their 16-byte alignment (the kernels' element
  // path), and 8 * k + 5 elements leave a tail after whole vectors.
  for (const [offset, count] of [
    [0, 8 * 1000 + 5],
    [1, 4003],
  ] as const)
    test(`converts ${count} elements at an offset of ${offset} element(s)`, () => {
      const values = rounded(randomValues(count, 8, 10), "f16");
      for (const [from, to] of [
        ["f32", "bf16"],
        ["bf16", "f32"],
        ["f16", "bf16"],
        ["f32", "f16"],
      ] as const) {
        const src = offsetAddress(device.alloc((count + 1) * dtypeBytes(from)), offset * dtypeBytes(from));
        backend.upload(src, encodeFromF32(values, from));
        const dst = offsetAddress(device.alloc((count + 1) * dtypeBytes(to)), offset * dtypeBytes(to));
        backend.convert(dst, to, src, from, count);
        expect(device.download(dst, count, to)).toEqual(rounded(rounded(values, from), to));
      }
    });
});

describe("vt_fill_uniform", () => {
  test("f32 values equal the TypeScript hash bit for bit", () => {
    const count = 100_003;
    for (const [seed, scale] of [
      [0, 1],
      [12345, 0.02],
      [0xffffffff, 3.5],
    ]) {
      const address = device.alloc(count * 4);
      backend.fillUniform(address, "f32", count, seed!, scale!);
      const actual = device.download(address, count);
      const expected = fillUniform(count, seed!, scale!);
      expect(f32Bits(Array.from(actual))).toEqual(f32Bits(Array.from(expected)));
    }
  });

  test("f16 and bf16 values are the f32 values rounded to nearest even", () => {
    const count = 40_000;
    for (const dtype of ["f16", "bf16"] as const) {
      const address = device.alloc(count * 2);
      backend.fillUniform(address, dtype, count, 99, 0.5);
      expect(device.download(address, count, dtype)).toEqual(fillUniform(count, 99, 0.5, dtype));
    }
  });

  test("an offset, odd-sized buffer gets the values of its own indices", () => {
    const count = 8 * 123 + 7;
    for (const dtype of ["f32", "f16", "bf16"] as const) {
      const bytes = dtypeBytes(dtype);
      const address = offsetAddress(device.alloc((count + 1) * bytes), bytes);
      backend.fillUniform(address, dtype, count, 7, 1.5);
      expect(device.download(address, count, dtype)).toEqual(fillUniform(count, 7, 1.5, dtype));
    }
  });

  test("values lie in [-scale, scale) and are not degenerate", () => {
    const values = fillUniform(10_000, 3, 2);
    expect(values.every((x) => x >= -2 && x < 2)).toBe(true);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    expect(Math.abs(mean)).toBeLessThan(0.1);
  });
});
