// vt_context_set_async: on the CPU the context's ops then run in order on a thread of its own and
// return at once, as CUDA ops do on a stream. Nothing a caller can observe through the ABI may
// change: results are the same bits, a host copy sees every op queued before it and is never read
// by one queued after it, and a context closes cleanly with work still queued. (The CUDA library
// accepts the call and changes nothing; these tests run on it too.)
import { describe, expect, test } from "bun:test";
import { type Address, Backend } from "../../src/backend/backend.ts";
import { randomValues, useTestDevice } from "../helpers/native.ts";

const device = await useTestDevice();
const backend = device.backend;

// Large enough that the CPU matmul splits it between its threads (the stream's OpenMP workers).
const M = 48;
const N = 192;
const K = 320;

function matmul(x: Address, w: Address, out: Address): void {
  backend.matmul({ x, w, bias: null, out, m: M, n: N, k: K, actDtype: "f32", weightDtype: "bf16" });
}

/**
 * Eager ops, uploads between them and a graph replayed on new inputs; every result downloaded at
 * the end, so in async mode nothing waits before the last copies.
 */
function pipeline(): Float32Array[] {
  const x = device.upload(randomValues(M * K, 1));
  const w = device.upload(randomValues(N * K, 2, 0.1), "bf16");
  const first = device.alloc(M * N * 4);
  const second = device.alloc(M * N * 4);
  const replayed = [device.alloc(M * N * 4), device.alloc(M * N * 4)];
  const out = device.alloc(M * N * 4);
  const half = device.alloc(M * N * 2);
  matmul(x, w, first);
  backend.upload(x, randomValues(M * K, 3));
  matmul(x, w, second);
  const graph = backend.captureGraph(() => {
    matmul(x, w, out);
    backend.convert(half, "bf16", out, "f32", M * N);
  });
  try {
    for (const [i, target] of replayed.entries()) {
      backend.upload(x, randomValues(M * K, 4 + i));
      graph.launch();
      backend.memcpy(target, half, M * N * 2, "deviceToDevice");
    }
  } finally {
    graph.destroy();
  }
  return [
    device.download(first, M * N),
    device.download(second, M * N),
    ...replayed.map((buffer) => device.download(buffer, M * N, "bf16")),
  ];
}

describe("asynchronous ops (vt_context_set_async)", () => {
  test("eager ops, host copies between them and graph replays give the same bits as in turns", () => {
    const inTurns = pipeline();
    backend.setAsync(true);
    try {
      const queued = pipeline();
      expect(queued).toEqual(inTurns);
      // The inputs differ from one result to the next, so equal bits are not a matter of luck.
      expect(inTurns[1]).not.toEqual(inTurns[0]!);
      expect(inTurns[3]).not.toEqual(inTurns[2]!);
    } finally {
      backend.setAsync(false);
    }
    expect(pipeline()).toEqual(inTurns);
  });

  test("a host copy waits for the ops queued before it, and they read what it replaces", () => {
    backend.setAsync(true);
    try {
      const w = device.upload(randomValues(N * K, 6, 0.1), "bf16");
      const x = device.alloc(M * K * 4);
      const outs = Array.from({ length: 6 }, () => device.alloc(M * N * 4));
      // Each upload rewrites x while the matmul queued before it may not have run yet.
      outs.forEach((out, i) => {
        backend.upload(x, randomValues(M * K, 10 + i));
        matmul(x, w, out);
      });
      const results = outs.map((out) => device.download(out, M * N));
      backend.setAsync(false);
      outs.forEach((out, i) => {
        backend.upload(x, randomValues(M * K, 10 + i));
        matmul(x, w, out);
        expect(results[i]).toEqual(device.download(out, M * N));
      });
    } finally {
      backend.setAsync(false);
    }
  });

  test("a graph is captured after queued ops, and a context closes with a replay still queued", async () => {
    const other = await Backend.open({ device: "cpu" });
    other.setAsync(true);
    const bytes = 4096;
    const source = other.malloc(bytes);
    const target = other.malloc(bytes);
    other.memset(source, 3, bytes);
    const graph = other.captureGraph(() => other.memcpy(target, source, bytes, "deviceToDevice"));
    graph.launch();
    expect(Array.from(other.download(new Uint8Array(bytes), target).subarray(0, 8))).toEqual(new Array(8).fill(3));
    other.memset(source, 5, bytes);
    graph.launch();
    // Closing runs what is queued first. The two buffers and the graph go with the process: freeing
    // them would wait for the queue, which is what this test leaves to the close.
    other.close();
  });
});
