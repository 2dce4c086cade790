// The paged KV cache's data movement: writing new tokens by slot mapping, copying blocks inside a
// cache and swapping them out to host memory and back.
import { describe, expect, test } from "bun:test";
import { offsetAddress } from "../../src/backend/address.ts";
import type { DType } from "../../src/backend/dtype.ts";
import * as ref from "../../src/reference/ops.ts";
import { randomValues, rounded, useTestDevice } from "../helpers/native.ts";

const device = await useTestDevice();
const backend = device.backend;

/**
 * Runs an op with 16-bit activations: on the CUDA backend it must succeed (true: the caller
 * checks its results); on the CPU backend it must fail with status 3 naming the op (false).
 */
describe("vt_write_kv_cache", () => {
  for (const cacheDtype of ["f32", "f16", "bf16"] as DType[])
    test(`writes K and V rows of a fused QKV buffer to their slots, skipping negative ones (${cacheDtype} cache)`, () => {
      const numKvHeads = 2;
      const headDim = 64;
      const blockSize = 16;
      const numBlocks = 6;
      const numQHeads = 4;
      const rowStride = (numQHeads + 2 * numKvHeads) * headDim;
      const slotMapping = [17, 18, -1, 95, 0, 40, 15];
      const numTokens = slotMapping.length;
      const qkv = randomValues(numTokens * rowStride, 20, 4);
      const cacheLength = numBlocks * blockSize * numKvHeads * headDim;
      const cacheBytes = cacheLength * (cacheDtype === "f32" ? 4 : 2);
      const kCache = device.alloc(cacheBytes);
      const vCache = device.alloc(cacheBytes);
      backend.memset(kCache, 0, cacheBytes);
      backend.memset(vCache, 0, cacheBytes);
      const qkvAddress = device.upload(qkv);
      const kOffset = numQHeads * headDim;
      const vOffset = kOffset + numKvHeads * headDim;
      backend.writeKvCache({
        k: offsetAddress(qkvAddress, kOffset * 4),
        v: offsetAddress(qkvAddress, vOffset * 4),
        kCache,
        vCache,
        slotMapping: device.uploadInt32(slotMapping),
        numTokens,
        numKvHeads,
        headDim,
        rowStride,
        blockSize,
        actDtype: "f32",
        cacheDtype,
      });
      const expectedK = new Float32Array(cacheLength);
      const expectedV = new Float32Array(cacheLength);
      ref.writeKvCache(expectedK, expectedV, qkv.subarray(kOffset), qkv.subarray(vOffset), slotMapping, {
        numKvHeads,
        headDim,
        rowStride,
        cacheDtype,
      });
      expect(device.download(kCache, cacheLength, cacheDtype)).toEqual(expectedK);
      expect(device.download(vCache, cacheLength, cacheDtype)).toEqual(expectedV);
    });

  // 16-bit activations into a cache of the same dtype (CUDA only): the copy is exact. Head sizes
  // that take 16-byte vectors and odd ones that do not.
  for (const act of ["bf16", "f16"] as DType[])
    for (const [numKvHeads, headDim] of [
      [2, 64],
      [3, 5],
    ])
      test(`writes ${act} K and V rows into a ${act} cache (${numKvHeads} heads of ${headDim})`, () => {
        const blockSize = 16;
        const numBlocks = 6;
        const rowStride = (4 + 2 * numKvHeads!) * headDim!;
        const slotMapping = [17, 18, -1, 95, 0, 40, 15];
        const numTokens = slotMapping.length;
        const qkv = rounded(randomValues(numTokens * rowStride, 23, 4), act);
        const cacheLength = numBlocks * blockSize * numKvHeads! * headDim!;
        const kCache = device.upload(new Float32Array(cacheLength), act);
        const vCache = device.upload(new Float32Array(cacheLength), act);
        const qkvAddress = device.upload(qkv, act);
        const kOffset = 4 * headDim!;
        const vOffset = kOffset + numKvHeads! * headDim!;
        const ran = device.ranWithHalfActivations("vt_write_kv_cache", () =>
          backend.writeKvCache({
            k: offsetAddress(qkvAddress, kOffset * 2),
            v: offsetAddress(qkvAddress, vOffset * 2),
            kCache,
            vCache,
            slotMapping: device.uploadInt32(slotMapping),
            numTokens,
            numKvHeads: numKvHeads!,
            headDim: headDim!,
            rowStride,
            blockSize,
            actDtype: act,
            cacheDtype: act,
          }),
        );
        if (!ran) return;
        const expectedK = new Float32Array(cacheLength);
        const expectedV = new Float32Array(cacheLength);
        ref.writeKvCache(expectedK, expectedV, qkv.subarray(kOffset), qkv.subarray(vOffset), slotMapping, {
          numKvHeads: numKvHeads!,
          headDim: headDim!,
          rowStride,
          cacheDtype: act,
        });
        expect(device.download(kCache, cacheLength, act)).toEqual(expectedK);
        expect(device.download(vCache, cacheLength, act)).toEqual(expectedV);
      });

  test("16-bit activations need a cache of the same dtype; the CPU takes none", () => {
    const buffer = device.upload(new Float32Array(64));
    for (const [actDtype, cacheDtype] of [
      ["bf16", "f16"],
      ["f16", "f32"],
    ] as const)
      expect(() =>
        backend.writeKvCache({
          k: buffer,
          v: buffer,
          kCache: buffer,
          vCache: buffer,
          slotMapping: device.uploadInt32([0]),
          numTokens: 1,
          numKvHeads: 1,
          headDim: 8,
          rowStride: 8,
          blockSize: 4,
          actDtype,
          cacheDtype,
        }),
      ).toThrow(/status 3\): vt_write_kv_cache/);
  });
});

// A cache of 3 planes (say K and V of a layer, plus a third) of 8 blocks of 96 bytes, planes
// padded so that plane strides differ from planes * blocks.
const numPlanes = 3;
const numBlocks = 8;
const blockBytes = 96;
const planeStride = numBlocks * blockBytes + 64;
const cacheBytes = numPlanes * planeStride;

function randomBytes(count: number, seed: number): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(randomValues(count, seed), (x) => Math.floor((x + 1) * 128));
}

describe("vt_copy_blocks", () => {
  test("copies every (src, dst) block in every plane and nothing else", () => {
    const bytes = randomBytes(cacheBytes, 21);
    const cache = device.alloc(cacheBytes);
    backend.upload(cache, bytes);
    const blockPairs = [0, 5, 2, 3, 7, 1];
    backend.copyBlocks({
      cache,
      numPlanes,
      planeStrideBytes: planeStride,
      blockBytes,
      blockPairs: device.uploadInt32(blockPairs),
      numPairs: blockPairs.length / 2,
    });
    ref.copyBlocks(bytes, { numPlanes, planeStride, blockLength: blockBytes, blockPairs });
    expect(backend.download(new Uint8Array(cacheBytes), cache)).toEqual(bytes);
  });

  // Block and plane sizes that allow 8-, 4-, 2- and 1-byte units.
  for (const [blocks, bytesPerBlock, stride] of [
    [5, 24, 5 * 24 + 8],
    [5, 12, 5 * 12],
    [4, 6, 4 * 6 + 2],
    [4, 7, 4 * 7 + 3],
  ] as const)
    test(`copies blocks of ${bytesPerBlock} bytes, planes ${stride} bytes apart`, () => {
      const bytes = randomBytes(numPlanes * stride, 24);
      const cache = device.alloc(bytes.length);
      backend.upload(cache, bytes);
      // The last block is a source (pairs are independent: the GPU copies them in parallel).
      const blockPairs = [0, 2, blocks - 1, 1];
      backend.copyBlocks({
        cache,
        numPlanes,
        planeStrideBytes: stride,
        blockBytes: bytesPerBlock,
        blockPairs: device.uploadInt32(blockPairs),
        numPairs: 2,
      });
      ref.copyBlocks(bytes, { numPlanes, planeStride: stride, blockLength: bytesPerBlock, blockPairs });
      expect(backend.download(new Uint8Array(bytes.length), cache)).toEqual(bytes);
    });

  test("a negative block id: rejected by the CPU (which reads pairs on the host), skipped on CUDA", () => {
    const bytes = randomBytes(cacheBytes, 25);
    const cache = device.alloc(cacheBytes);
    backend.upload(cache, bytes);
    const run = () =>
      backend.copyBlocks({
        cache,
        numPlanes,
        planeStrideBytes: planeStride,
        blockBytes,
        blockPairs: device.uploadInt32([0, -1, 2, 3]),
        numPairs: 2,
      });
    if (backend.name === "cpu") {
      expect(run).toThrow(/status 1\): vt_copy_blocks: block_pairs\[1\] is negative/);
      return;
    }
    run();
    ref.copyBlocks(bytes, { numPlanes, planeStride, blockLength: blockBytes, blockPairs: [2, 3] });
    expect(backend.download(new Uint8Array(cacheBytes), cache)).toEqual(bytes);
  });
});

describe("vt_swap_blocks", () => {
  test("swapping blocks out to host memory and back into other blocks round-trips them", () => {
    const original = randomBytes(cacheBytes, 22);
    const cache = device.alloc(cacheBytes);
    backend.upload(cache, original);
    const hostPlaneStride = 4 * blockBytes;
    const host = backend.mallocHost(numPlanes * hostPlaneStride);
    try {
      backend.swapBlocks({
        dst: host,
        dstPlaneStrideBytes: hostPlaneStride,
        src: cache,
        srcPlaneStrideBytes: planeStride,
        numPlanes,
        blockBytes,
        blockPairs: Int32Array.of(6, 0, 1, 3),
        kind: "deviceToHost",
      });
      backend.memset(cache, 0, cacheBytes);
      backend.swapBlocks({
        dst: cache,
        dstPlaneStrideBytes: planeStride,
        src: host,
        srcPlaneStrideBytes: hostPlaneStride,
        numPlanes,
        blockBytes,
        blockPairs: Int32Array.of(0, 2, 3, 4),
        kind: "hostToDevice",
      });
      // Block 6 went to host block 0 and came back as block 2; block 1 via host block 3 to block 4.
      const expected = new Uint8Array(cacheBytes);
      for (let plane = 0; plane < numPlanes; plane++)
        for (const [from, to] of [
          [6, 2],
          [1, 4],
        ]) {
          const base = plane * planeStride;
          const block = original.subarray(base + from! * blockBytes, base + (from! + 1) * blockBytes);
          expected.set(block, base + to! * blockBytes);
        }
      expect(backend.download(new Uint8Array(cacheBytes), cache)).toEqual(expected);
    } finally {
      backend.freeHost(host);
    }
  });

  for (const planes of [1, numPlanes])
    test(`swaps runs of consecutive blocks and single blocks out and back (${planes} plane${planes > 1 ? "s" : ""})`, () => {
      const original = randomBytes(cacheBytes, 26);
      const cache = device.alloc(cacheBytes);
      backend.upload(cache, original);
      const hostPlaneStride = 6 * blockBytes;
      const host = backend.mallocHost(planes * hostPlaneStride);
      try {
        // Device blocks 2, 3, 4 to host blocks 1, 2, 3 (one run), block 7 to host block 5.
        backend.swapBlocks({
          dst: host,
          dstPlaneStrideBytes: hostPlaneStride,
          src: cache,
          srcPlaneStrideBytes: planeStride,
          numPlanes: planes,
          blockBytes,
          blockPairs: Int32Array.of(2, 1, 3, 2, 4, 3, 7, 5),
          kind: "deviceToHost",
        });
        backend.memset(cache, 0, cacheBytes);
        // Back to device blocks 5, 6, 7 (a run) and 0.
        backend.swapBlocks({
          dst: cache,
          dstPlaneStrideBytes: planeStride,
          src: host,
          srcPlaneStrideBytes: hostPlaneStride,
          numPlanes: planes,
          blockBytes,
          blockPairs: Int32Array.of(1, 5, 2, 6, 3, 7, 5, 0),
          kind: "hostToDevice",
        });
        const expected = new Uint8Array(cacheBytes);
        for (let plane = 0; plane < planes; plane++)
          for (const [from, to] of [
            [2, 5],
            [3, 6],
            [4, 7],
            [7, 0],
          ]) {
            const base = plane * planeStride;
            expected.set(
              original.subarray(base + from! * blockBytes, base + (from! + 1) * blockBytes),
              base + to! * blockBytes,
            );
          }
        expect(backend.download(new Uint8Array(cacheBytes), cache)).toEqual(expected);
      } finally {
        backend.freeHost(host);
      }
    });

  test("a negative block id is an invalid argument (the pairs are on the host)", () => {
    const cache = device.alloc(cacheBytes);
    const host = backend.mallocHost(cacheBytes);
    try {
      const swap = (blockPairs: Int32Array, kind: "deviceToHost" | "hostToDevice") =>
        backend.swapBlocks({
          dst: host,
          dstPlaneStrideBytes: planeStride,
          src: cache,
          srcPlaneStrideBytes: planeStride,
          numPlanes,
          blockBytes,
          blockPairs,
          kind,
        });
      expect(() => swap(Int32Array.of(0, 1, -2, 3), "deviceToHost")).toThrow(
        /status 1\): vt_swap_blocks: block_pairs\[2\] is negative/,
      );
    } finally {
      backend.freeHost(host);
    }
  });
});
