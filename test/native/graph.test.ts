// vt_graph_*: ops enqueued between begin and end are recorded, not run, and every launch replays
// them on the buffers' current contents; what a graph cannot hold (allocation, host copies) is
// refused during the capture. The CPU backend has no graphs and says so.
import { describe, expect, test } from "bun:test";
import { NativeError } from "../../src/backend/backend.ts";
import { useTestDevice } from "../helpers/native.ts";

const device = await useTestDevice();
const backend = device.backend;

describe("graphs", () => {
  if (backend.name === "cpu") {
    test("the CPU backend reports graphs as unsupported", () => {
      expect(backend.supportsGraphs).toBe(false);
      expect(() => backend.captureGraph(() => {})).toThrow(/status 3\).*no graphs/);
    });
    return;
  }

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

  test("a destroyed graph cannot be launched", () => {
    const buffer = device.alloc(8);
    const graph = backend.captureGraph(() => backend.memset(buffer, 0, 8));
    graph.destroy();
    expect(() => graph.launch()).toThrow(/destroyed/);
  });
});
