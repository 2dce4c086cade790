// vt_graph_*: ops enqueued between begin and end are recorded, not run, and every launch replays
// them on the buffers' current contents; what a graph cannot hold (allocation, host copies) is
// refused during the capture. The CPU backend records the calls themselves.
import { describe, expect, test } from "bun:test";
import { NativeError } from "../../src/backend/backend.ts";
import { NULL_ADDRESS, useTestDevice } from "../helpers/native.ts";

const device = await useTestDevice();
const backend = device.backend;

describe("graphs", () => {
  test("a captured op runs only at launch, on the inputs' contents at that time", () => {
    const count = 1000;
    const source = device.upload(new Float32Array(count).fill(1.5));
    const target = device.alloc(count * 2);
    backend.memset(target, 0, count * 2);
    const graph = backend.captureGraph(() => backend.convert(target, "bf16", source, "f32", count));
    try {
      expect(device.download(target, count, "bf16").every((x) => x === 0)).toBe(true);
      graph.launch();
      expect(device.download(target, count, "bf16").every((x) => x === 1.5)).toBe(true);
      backend.upload(source, new Float32Array(count).fill(-3));
      graph.launch();
      expect(device.download(target, count, "bf16").every((x) => x === -3)).toBe(true);
    } finally {
      graph.destroy();
    }
  });

  test("allocation and host copies are refused during a capture, which still ends cleanly", () => {
    expect(() => backend.captureGraph(() => backend.malloc(64))).toThrow(
      /vt_malloc: not allowed while a graph is being captured/,
    );
    const buffer = device.alloc(16);
    expect(() => backend.captureGraph(() => backend.upload(buffer, new Int32Array(4)))).toThrow(NativeError);
    // Nothing is left capturing: ordinary work runs at once again.
    backend.upload(buffer, Int32Array.from([1, 2, 3, 4]));
    expect(Array.from(device.downloadInt32(buffer, 4))).toEqual([1, 2, 3, 4]);
  });

  test("ops replay in their recorded order, each reading what the one before wrote", () => {
    const count = 300;
    const values = Float32Array.from({ length: count }, (_, i) => (i - 150) / 7);
    const source = device.upload(values);
    const half = device.alloc(count * 2);
    const copy = device.alloc(count * 2);
    const back = device.alloc(count * 4);
    const graph = backend.captureGraph(() => {
      backend.convert(half, "bf16", source, "f32", count);
      backend.memcpy(copy, half, count * 2, "deviceToDevice");
      backend.convert(back, "f32", copy, "bf16", count);
    });
    try {
      for (const scale of [1, -2]) {
        backend.upload(
          source,
          values.map((x) => x * scale),
        );
        graph.launch();
        expect(device.download(back, count)).toEqual(device.download(copy, count, "bf16"));
        expect(device.download(back, count)[10]).toBeCloseTo(values[10]! * scale, 1);
      }
    } finally {
      graph.destroy();
    }
  });

  test("an op's bad arguments fail the capture with the op's own message", () => {
    const target = device.alloc(64);
    expect(() => backend.captureGraph(() => backend.convert(target, "bf16", NULL_ADDRESS, "f32", 16))).toThrow(
      /vt_convert/,
    );
    const graph = backend.captureGraph(() => backend.memset(target, 7, 64));
    graph.launch();
    graph.destroy();
    expect(Array.from(device.downloadInt32(target, 1))).toEqual([0x07070707]);
  });

  test("a destroyed graph cannot be launched", () => {
    const buffer = device.alloc(8);
    const graph = backend.captureGraph(() => backend.memset(buffer, 0, 8));
    graph.destroy();
    expect(() => graph.launch()).toThrow(/destroyed/);
  });
});
