// vt_paged_attention against the reference definition (plain causal attention over K/V read
// through the block tables): mixed decode/prefill batches, GQA, head and block sizes, cache
// dtypes, sliding windows, and the argument checks.
import { describe, expect, test } from "bun:test";
import { Backend, type Address } from "../../src/backend/backend.ts";
import type { DType } from "../../src/backend/dtype.ts";
import * as ref from "../../src/reference/ops.ts";
import { Device, expectClose, randomValues, rounded, useCpuDevice } from "../helpers/native.ts";

const device = await useCpuDevice();

/** A sequence of the batch: `cached` tokens already in the cache before this step's query. */
interface Sequence {
  cached: number;
  queryLen: number;
}

interface Shape {
  numQHeads: number;
  numKvHeads: number;
  headDim: number;
  blockSize: number;
  cacheDtype: DType;
  slidingWindow?: number;
  /** Multiplies q, so that the softmax is peaked rather than nearly flat. */
  qScale?: number;
}

// A decode of context 37, a prefill chunk of 20 tokens on top of 45 cached, a fresh prefill of 33.
const mixedBatch: Sequence[] = [
  { cached: 36, queryLen: 1 },
  { cached: 45, queryLen: 20 },
  { cached: 0, queryLen: 33 },
];

interface Batch {
  args: Parameters<Backend["pagedAttention"]>[0];
  expected: Float32Array;
  outLength: number;
}

/**
 * Uploads a batch whose sequences own shuffled, non-contiguous physical blocks (unused
 * block-table entries are -1, spare blocks hold values that must never be read), and computes
 * the reference output from the very values stored in the cache's dtype.
 */
function prepareBatch(target: Device, sequences: Sequence[], shape: Shape, seed = 1): Batch {
  const { numQHeads, numKvHeads, headDim, blockSize, cacheDtype } = shape;
  const seqLens = sequences.map((s) => s.cached + s.queryLen);
  const queryStartLoc = [0];
  for (const s of sequences) queryStartLoc.push(queryStartLoc.at(-1)! + s.queryLen);
  const numTokens = queryStartLoc.at(-1)!;
  const blocksNeeded = seqLens.map((n) => Math.ceil(n / blockSize));
  const maxBlocksPerSeq = Math.max(1, ...blocksNeeded) + 1;
  const numBlocks = blocksNeeded.reduce((a, b) => a + b, 0) + 3;

  const order = Array.from({ length: numBlocks }, (_, i) => i);
  const shuffle = randomValues(numBlocks, seed + 100);
  order.sort((a, b) => shuffle[a]! - shuffle[b]!);
  const blockTables = new Int32Array(sequences.length * maxBlocksPerSeq).fill(-1);
  let next = 0;
  sequences.forEach((_, s) => {
    for (let b = 0; b < blocksNeeded[s]!; b++) blockTables[s * maxBlocksPerSeq + b] = order[next++]!;
  });

  const cacheLength = numBlocks * blockSize * numKvHeads * headDim;
  const kCache = rounded(randomValues(cacheLength, seed + 1), cacheDtype);
  const vCache = rounded(randomValues(cacheLength, seed + 2), cacheDtype);
  const qRowStride = (numQHeads + 2 * numKvHeads) * headDim;
  const q = randomValues(numTokens * qRowStride, seed + 3, shape.qScale ?? 1);
  const scale = 1 / Math.sqrt(headDim);
  const slidingWindow = shape.slidingWindow ?? 0;

  const expected = ref.pagedAttention({
    q, kCache, vCache, blockTables, seqLens, queryStartLoc, maxBlocksPerSeq, numQHeads, numKvHeads, headDim,
    qRowStride, blockSize, scale, slidingWindow,
  });
  const outLength = numTokens * numQHeads * headDim;
  return {
    args: {
      out: target.alloc(Math.max(1, outLength) * 4), q: target.upload(q), kCache: target.upload(kCache, cacheDtype),
      vCache: target.upload(vCache, cacheDtype), blockTables: target.uploadInt32(blockTables),
      seqLens: target.uploadInt32(seqLens), queryStartLoc: target.uploadInt32(queryStartLoc), numSeqs: sequences.length,
      numTokens, maxQueryLen: Math.max(0, ...sequences.map((s) => s.queryLen)), maxSeqLen: Math.max(0, ...seqLens),
      maxBlocksPerSeq, numQHeads, numKvHeads, headDim, qRowStride, blockSize, scale, slidingWindow, actDtype: "f32",
      cacheDtype,
    },
    expected,
    outLength,
  };
}

// f32 accumulation against the f64 reference. A peaked softmax (large qScale) turns the f32
// rounding of scores of magnitude ~10 into relative output errors of that size, hence its rtol.
function expectMatchesReference(sequences: Sequence[], shape: Shape): void {
  const batch = prepareBatch(device, sequences, shape);
  device.backend.pagedAttention(batch.args);
  const rtol = (shape.qScale ?? 1) > 2 ? 1e-4 : 1e-5;
  expectClose(device.download(batch.args.out, batch.outLength), batch.expected, { rtol, atol: 1e-6 });
}

function describeShape(shape: Shape): string {
  const parts = [
    `${shape.cacheDtype} cache`,
    `GQA ${shape.numQHeads / shape.numKvHeads}`,
    `head_dim ${shape.headDim}`,
    `block ${shape.blockSize}`,
  ];
  if (shape.slidingWindow) parts.push(`window ${shape.slidingWindow}`);
  return parts.join(", ");
}

describe("a mixed batch of a decode, a prefill chunk and a fresh prefill matches the reference", () => {
  for (const cacheDtype of ["f32", "bf16", "f16"] as DType[])
    for (const ratio of [1, 2, 4])
      for (const headDim of [64, 128])
        for (const blockSize of [16, 32]) {
          const shape = { numQHeads: 8, numKvHeads: 8 / ratio, headDim, blockSize, cacheDtype };
          test(describeShape(shape), () => expectMatchesReference(mixedBatch, shape));
        }
});

describe("head dims that are not a multiple of the vector width", () => {
  for (const headDim of [32, 40, 72, 80, 96])
    for (const cacheDtype of ["f32", "bf16"] as DType[]) {
      const shape = { numQHeads: 4, numKvHeads: 2, headDim, blockSize: 16, cacheDtype };
      test(describeShape(shape), () => expectMatchesReference(mixedBatch, shape));
    }
});

describe("sliding window attends only to the last window positions", () => {
  for (const slidingWindow of [1, 8, 20, 100])
    for (const cacheDtype of ["f32", "bf16"] as DType[]) {
      const shape = { numQHeads: 8, numKvHeads: 2, headDim: 64, blockSize: 16, cacheDtype, slidingWindow };
      test(describeShape(shape), () =>
        expectMatchesReference([...mixedBatch, { cached: 100, queryLen: 40 }], shape),
      );
    }
});

describe("long contexts and peaked softmax", () => {
  test("contexts across many blocks with large scores (f16 cache)", () => {
    expectMatchesReference(
      [
        { cached: 299, queryLen: 1 },
        { cached: 200, queryLen: 64 },
        { cached: 0, queryLen: 70 },
      ],
      { numQHeads: 4, numKvHeads: 2, headDim: 128, blockSize: 16, cacheDtype: "f16", qScale: 8 },
    );
  });

  for (const blockSize of [1, 8, 64])
    test(`block size ${blockSize} (chunks inside and across blocks)`, () => {
      const shape: Shape = { numQHeads: 4, numKvHeads: 1, headDim: 64, blockSize, cacheDtype: "bf16", qScale: 4 };
      expectMatchesReference(mixedBatch, shape);
    });

  for (const numQHeads of [8, 32, 64])
    test(`one KV head shared by ${numQHeads} query heads`, () => {
      expectMatchesReference(mixedBatch, { numQHeads, numKvHeads: 1, headDim: 32, blockSize: 16, cacheDtype: "f32" });
    });
});

describe("batch edge cases", () => {
  test("a sequence with no query tokens computes nothing and leaves the others right", () => {
    expectMatchesReference(
      [{ cached: 10, queryLen: 3 }, { cached: 50, queryLen: 0 }, { cached: 5, queryLen: 1 }],
      { numQHeads: 4, numKvHeads: 2, headDim: 64, blockSize: 16, cacheDtype: "f32" },
    );
  });

  test("zero tokens is a no-op", () => {
    const batch = prepareBatch(device, [{ cached: 7, queryLen: 0 }], {
      numQHeads: 2, numKvHeads: 1, headDim: 64, blockSize: 16, cacheDtype: "f32",
    });
    device.backend.memset(batch.args.out, 0x7f, 4);
    device.backend.pagedAttention(batch.args);
    expect(Array.from(device.backend.download(new Uint8Array(4), batch.args.out))).toEqual([0x7f, 0x7f, 0x7f, 0x7f]);
  });

  test("the result does not depend on the number of threads", async () => {
    const libraryPath = process.env.VT_CPU_LIBRARY;
    const single = new Device(await Backend.open({ device: "cpu", numThreads: 1, libraryPath }));
    try {
      const shape: Shape = { numQHeads: 8, numKvHeads: 2, headDim: 128, blockSize: 16, cacheDtype: "bf16" };
      const outputs = [device, single].map((target) => {
        const batch = prepareBatch(target, mixedBatch, shape);
        target.backend.pagedAttention(batch.args);
        return target.download(batch.args.out, batch.outLength);
      });
      expect(outputs[1]).toEqual(outputs[0]!);
    } finally {
      single.freeAll();
      single.backend.close();
    }
  });
});

describe("argument errors", () => {
  const shape: Shape = { numQHeads: 4, numKvHeads: 2, headDim: 64, blockSize: 16, cacheDtype: "f32" };

  function expectFailure(change: (args: Batch["args"]) => void, pattern: RegExp): void {
    const batch = prepareBatch(device, mixedBatch, shape);
    change(batch.args);
    expect(() => device.backend.pagedAttention(batch.args)).toThrow(pattern);
  }

  test("a NULL pointer is an invalid argument naming the op", () => {
    expectFailure((args) => (args.blockTables = 0), /status 1\): vt_paged_attention: .*NULL/);
  });

  test("bf16 activations are unsupported", () => {
    expectFailure((args) => (args.actDtype = "bf16"), /status 3\): vt_paged_attention: .*f32 only/);
  });

  test("query heads must be a multiple of KV heads", () => {
    expectFailure((args) => (args.numQHeads = 3), /status 1\): vt_paged_attention: num_q_heads \(3\)/);
  });

  test("a sequence shorter than its query is rejected", () => {
    expectFailure((args) => {
      args.seqLens = device.uploadInt32([37, 10, 33]);
    }, /status 1\): vt_paged_attention: seq_lens\[1\] is shorter than its query/);
  });

  test("a bound below the batch's query length is rejected", () => {
    expectFailure((args) => (args.maxQueryLen = 20), /status 1\): vt_paged_attention: sequence 2 .*max_query_len/);
  });

  test("a negative block id in a used block-table entry is rejected", () => {
    expectFailure((args) => {
      args.blockTables = device.uploadInt32(new Int32Array(3 * args.maxBlocksPerSeq).fill(-1));
    }, /status 1\): vt_paged_attention: block table of sequence 0 has a negative block id/);
  });

  test("out aliasing q is rejected", () => {
    expectFailure((args) => (args.out = args.q as Address), /status 1\): vt_paged_attention: out must not alias q/);
  });
});
