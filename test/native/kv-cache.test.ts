// The paged KV cache's data movement: writing new tokens by slot mapping, copying blocks inside a
// cache and swapping them out to host memory and back.
import { describe, expect, test } from "bun:test";
import type { DType } from "../../src/backend/dtype.ts";
import * as ref from "../../src/reference/ops.ts";
import { randomValues, useCpuDevice } from "../helpers/native.ts";

const device = await useCpuDevice();
const backend = device.backend;

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
        k: qkvAddress + kOffset * 4, v: qkvAddress + vOffset * 4, kCache, vCache,
        slotMapping: device.uploadInt32(slotMapping), numTokens, numKvHeads, headDim, rowStride, blockSize, actDtype: "f32", cacheDtype,
      });
      const expectedK = new Float32Array(cacheLength);
      const expectedV = new Float32Array(cacheLength);
      ref.writeKvCache(expectedK, expectedV, qkv.subarray(kOffset), qkv.subarray(vOffset), slotMapping, {
        numKvHeads, headDim, rowStride, cacheDtype,
      });
      expect(device.download(kCache, cacheLength, cacheDtype)).toEqual(expectedK);
      expect(device.download(vCache, cacheLength, cacheDtype)).toEqual(expectedV);
    });

  test("bf16 activations are unsupported", () => {
    const buffer = device.upload(new Float32Array(64));
    expect(() =>
      backend.writeKvCache({
        k: buffer, v: buffer, kCache: buffer, vCache: buffer, slotMapping: device.uploadInt32([0]), numTokens: 1,
        numKvHeads: 1, headDim: 8, rowStride: 8, blockSize: 4, actDtype: "bf16", cacheDtype: "bf16",
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
      cache, numPlanes, planeStrideBytes: planeStride, blockBytes, blockPairs: device.uploadInt32(blockPairs),
      numPairs: blockPairs.length / 2,
    });
    ref.copyBlocks(bytes, { numPlanes, planeStride, blockLength: blockBytes, blockPairs });
    expect(backend.download(new Uint8Array(cacheBytes), cache)).toEqual(bytes);
  });

  test("a negative block id is an invalid argument", () => {
    const cache = device.alloc(cacheBytes);
    expect(() =>
      backend.copyBlocks({
        cache, numPlanes, planeStrideBytes: planeStride, blockBytes, blockPairs: device.uploadInt32([0, -1]), numPairs: 1,
      }),
    ).toThrow(/status 1\): vt_copy_blocks: block_pairs\[1\] is negative/);
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
        dst: host, dstPlaneStrideBytes: hostPlaneStride, src: cache, srcPlaneStrideBytes: planeStride, numPlanes,
        blockBytes, blockPairs: Int32Array.of(6, 0, 1, 3), kind: "deviceToHost",
      });
      backend.memset(cache, 0, cacheBytes);
      backend.swapBlocks({
        dst: cache, dstPlaneStrideBytes: planeStride, src: host, srcPlaneStrideBytes: hostPlaneStride, numPlanes,
        blockBytes, blockPairs: Int32Array.of(0, 2, 3, 4), kind: "hostToDevice",
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
});
