// vt_paged_attention against the reference definition (plain causal attention over K/V read
// through the block tables): mixed decode/prefill batches, GQA, head and block sizes, cache
// dtypes, sliding windows, soft-capped scores, long (split-K on CUDA) contexts, 16-bit activations (CUDA only), the
// padding a captured decode step uses, and the argument checks.
import { describe, expect, test } from "bun:test";
import { offsetAddress } from "../../src/backend/address.ts";
import { Backend } from "../../src/backend/backend.ts";
import type { DType } from "../../src/backend/dtype.ts";
import * as ref from "../../src/reference/ops.ts";
import { Device, expectClose, NULL_ADDRESS, randomValues, rounded, useTestDevice } from "../helpers/native.ts";

const device = await useTestDevice();
const backend = device.backend;

/**
 * A sequence of the batch: `cached` tokens already in the cache before this step's query.
 * cached -1 with queryLen 1 is a padding sequence (seq_len 0) of a graph-captured decode batch.
 */
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
  /** Activations (q and out); f32 unless set. 16-bit ones need a cache of the same dtype. */
  actDtype?: DType;
  slidingWindow?: number;
  /** Gemma 2's attention soft-capping (0 or absent: off). */
  softCap?: number;
  /** Multiplies q, so that the softmax is peaked rather than nearly flat. */
  qScale?: number;
}

// A decode of context 37, a prefill chunk of 20 tokens on top of 45 cached, a fresh prefill of 33.
const mixedBatch: Sequence[] = [
  { cached: 36, queryLen: 1 },
  { cached: 45, queryLen: 20 },
  { cached: 0, queryLen: 33 },
];

type ReferenceInputs = Parameters<typeof ref.pagedAttention>[0];

interface Batch {
  args: Parameters<Backend["pagedAttention"]>[0];
  /** The host values behind args, for recomputing the reference after changing some. */
  inputs: ReferenceInputs;
  expected: Float32Array;
  outLength: number;
}

/** The reference output, with zeros for padding sequences (seq_len 0: no key to attend to). */
function referenceOutput(inputs: ReferenceInputs): Float32Array {
  const expected = ref.pagedAttention(inputs);
  const rowLength = inputs.numQHeads * inputs.headDim;
  for (let i = 0; i < inputs.seqLens.length; i++)
    if (inputs.seqLens[i] === 0)
      expected.fill(0, inputs.queryStartLoc[i]! * rowLength, inputs.queryStartLoc[i + 1]! * rowLength);
  return expected;
}

/**
 * Uploads a batch whose sequences own shuffled, non-contiguous physical blocks (unused
 * block-table entries are -1, spare blocks hold values that must never be read), and computes
 * the reference output from the very values stored in the cache's dtype.
 */
function prepareBatch(
  target: Device,
  sequences: Sequence[],
  shape: Shape,
  seed = 1,
  options: { maxSeqLen?: number } = {},
): Batch {
  const { numQHeads, numKvHeads, headDim, blockSize, cacheDtype } = shape;
  const actDtype = shape.actDtype ?? "f32";
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
  const q = rounded(randomValues(numTokens * qRowStride, seed + 3, shape.qScale ?? 1), actDtype);
  const scale = 1 / Math.sqrt(headDim);
  const slidingWindow = shape.slidingWindow ?? 0;
  const softCap = shape.softCap ?? 0;

  const inputs: ReferenceInputs = {
    q,
    kCache,
    vCache,
    blockTables,
    seqLens,
    queryStartLoc,
    maxBlocksPerSeq,
    numQHeads,
    numKvHeads,
    headDim,
    qRowStride,
    blockSize,
    scale,
    slidingWindow,
    softCap,
  };
  const outLength = numTokens * numQHeads * headDim;
  return {
    args: {
      out: target.alloc(Math.max(1, outLength) * (actDtype === "f32" ? 4 : 2)),
      q: target.upload(q, actDtype),
      kCache: target.upload(kCache, cacheDtype),
      vCache: target.upload(vCache, cacheDtype),
      blockTables: target.uploadInt32(blockTables),
      seqLens: target.uploadInt32(seqLens),
      queryStartLoc: target.uploadInt32(queryStartLoc),
      numSeqs: sequences.length,
      numTokens,
      maxQueryLen: Math.max(0, ...sequences.map((s) => s.queryLen)),
      maxSeqLen: options.maxSeqLen ?? Math.max(0, ...seqLens),
      maxBlocksPerSeq,
      numQHeads,
      numKvHeads,
      headDim,
      qRowStride,
      blockSize,
      scale,
      slidingWindow,
      softCap,
      actDtype,
      cacheDtype,
    },
    inputs,
    expected: referenceOutput(inputs),
    outLength,
  };
}

// f32 accumulation against the f64 reference. A peaked softmax (large qScale) turns the f32
// rounding of scores of magnitude ~10 into relative output errors of that size, hence its rtol.
// 16-bit activations add the output's rounding (2^-9 relative for bf16, 2^-12 for f16) and that of
// the softmax weights, which the tensor-core kernel feeds to P V in the activation dtype.
function tolerance(shape: Shape): { rtol: number; atol: number } {
  const act = shape.actDtype ?? "f32";
  if (act === "bf16") return { rtol: 2e-2, atol: 3e-3 };
  if (act === "f16") return { rtol: 2.5e-3, atol: 4e-4 };
  return { rtol: (shape.qScale ?? 1) > 2 ? 1e-4 : 1e-5, atol: 1e-6 };
}

/** Runs the batch on the test device, its output rows filled with garbage first. */
function runBatch(batch: Batch, shape: Shape): Float32Array {
  const act = shape.actDtype ?? "f32";
  backend.memset(batch.args.out, 0x7f, batch.outLength * (act === "f32" ? 4 : 2));
  backend.pagedAttention(batch.args);
  return device.download(batch.args.out, batch.outLength, act);
}

function expectMatchesReference(sequences: Sequence[], shape: Shape, options: { maxSeqLen?: number } = {}): void {
  const batch = prepareBatch(device, sequences, shape, 1, options);
  expectClose(runBatch(batch, shape), batch.expected, tolerance(shape));
}

/**
 * The CUDA backend runs 16-bit activations (with a cache of the same dtype) and must match the
 * reference; the CPU backend computes in f32 only and must refuse them with status 3.
 */
function expectHalfActivationsMatch(sequences: Sequence[], shape: Shape): void {
  if (backend.name === "cuda") {
    expectMatchesReference(sequences, shape);
    return;
  }
  const batch = prepareBatch(device, sequences, shape);
  expect(() => backend.pagedAttention(batch.args)).toThrow(/status 3\): vt_paged_attention: .*f32 only/);
}

function describeShape(shape: Shape): string {
  const parts = [
    `${shape.cacheDtype} cache`,
    `GQA ${shape.numQHeads / shape.numKvHeads}`,
    `head_dim ${shape.headDim}`,
    `block ${shape.blockSize}`,
  ];
  if (shape.actDtype && shape.actDtype !== "f32") parts.unshift(`${shape.actDtype} act`);
  if (shape.slidingWindow) parts.push(`window ${shape.slidingWindow}`);
  if (shape.softCap) parts.push(`soft cap ${shape.softCap}`);
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
      test(describeShape(shape), () => expectMatchesReference([...mixedBatch, { cached: 100, queryLen: 40 }], shape));
    }
});

// Scores of a peaked softmax (qScale 6: scaled scores up to ~15) beyond a cap of 5 are squeezed
// into (-5, 5): without the capping the output would differ by far more than the tolerance.
describe("soft-capped scores (Gemma 2) match the reference", () => {
  for (const cacheDtype of ["f32", "bf16"] as DType[])
    for (const slidingWindow of [0, 20]) {
      const shape: Shape = {
        numQHeads: 8,
        numKvHeads: 2,
        headDim: 64,
        blockSize: 16,
        cacheDtype,
        slidingWindow,
        softCap: 5,
        qScale: 6,
      };
      test(describeShape(shape), () => expectMatchesReference([...mixedBatch, { cached: 100, queryLen: 40 }], shape));
    }

  test("the capping changes the result (the scores do exceed the cap)", () => {
    const shape: Shape = { numQHeads: 8, numKvHeads: 2, headDim: 64, blockSize: 16, cacheDtype: "f32", qScale: 6 };
    const capped = prepareBatch(device, mixedBatch, { ...shape, softCap: 5 });
    const uncapped = prepareBatch(device, mixedBatch, shape);
    let difference = 0;
    for (let i = 0; i < capped.expected.length; i++)
      difference = Math.max(difference, Math.abs(capped.expected[i]! - uncapped.expected[i]!));
    expect(difference).toBeGreaterThan(0.1);
  });

  test("long decodes (split-K on CUDA) with a soft cap", () => {
    expectMatchesReference(longBatch, {
      numQHeads: 8,
      numKvHeads: 1,
      headDim: 128,
      blockSize: 16,
      cacheDtype: "f32",
      softCap: 5,
      qScale: 4,
    });
  });
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

// Long decodes (1500 and 2100 tokens: 3 and 5 split-K partitions of 512 on CUDA, both with a
// partial last block), a prefill chunk of an odd length over a long cached prefix, GQA 8.
const longBatch: Sequence[] = [
  { cached: 1499, queryLen: 1 },
  { cached: 1200, queryLen: 13 },
  { cached: 2099, queryLen: 1 },
  { cached: 20, queryLen: 1 },
];

// Query lengths that fill no tile evenly, next to decodes.
const oddBatch: Sequence[] = [
  { cached: 5, queryLen: 7 },
  { cached: 100, queryLen: 1 },
  { cached: 0, queryLen: 13 },
  { cached: 31, queryLen: 3 },
  { cached: 0, queryLen: 1 },
];

describe("long contexts (split-K decode on CUDA) and odd query lengths", () => {
  for (const cacheDtype of ["f32", "bf16"] as DType[])
    test(`1500 and 2100 tokens, GQA 8 (${cacheDtype} cache)`, () => {
      expectMatchesReference(longBatch, { numQHeads: 8, numKvHeads: 1, headDim: 64, blockSize: 16, cacheDtype });
    });

  test("1500 and 2100 tokens with a sliding window of 700, head_dim 128", () => {
    expectMatchesReference(longBatch, {
      numQHeads: 4,
      numKvHeads: 2,
      headDim: 128,
      blockSize: 32,
      cacheDtype: "f16",
      slidingWindow: 700,
    });
  });

  test("a peaked softmax over a decode of three partitions", () => {
    expectMatchesReference([{ cached: 1300, queryLen: 1 }], {
      numQHeads: 2,
      numKvHeads: 1,
      headDim: 64,
      blockSize: 16,
      cacheDtype: "f32",
      qScale: 8,
    });
  });

  for (const ratio of [1, 8])
    test(`query lengths 7, 13, 3 among decodes, GQA ${ratio}`, () => {
      expectMatchesReference(oddBatch, {
        numQHeads: 8,
        numKvHeads: 8 / ratio,
        headDim: 64,
        blockSize: 16,
        cacheDtype: "bf16",
      });
    });

  // Real models' groups are not all powers of two: SmolLM2-135M 9/3, Qwen2.5-1.5B 12/2,
  // Qwen2.5-0.5B 14/2.
  for (const [numQHeads, numKvHeads] of [
    [9, 3],
    [12, 2],
    [14, 2],
  ] as const)
    test(`GQA ${numQHeads}/${numKvHeads} (a group that is not a power of two), with a long decode`, () => {
      const sequences = [...oddBatch, { cached: 700, queryLen: 1 }];
      expectMatchesReference(sequences, { numQHeads, numKvHeads, headDim: 64, blockSize: 16, cacheDtype: "bf16" });
      expectHalfActivationsMatch(sequences, {
        numQHeads,
        numKvHeads,
        headDim: 64,
        blockSize: 16,
        cacheDtype: "bf16",
        actDtype: "bf16",
      });
    });

  test("head_dim 256", () => {
    expectMatchesReference(oddBatch, { numQHeads: 4, numKvHeads: 2, headDim: 256, blockSize: 16, cacheDtype: "bf16" });
  });
});

describe("16-bit activations with a cache of the same dtype (CUDA; status 3 on the CPU)", () => {
  for (const act of ["bf16", "f16"] as DType[])
    for (const ratio of [1, 2, 4, 8])
      for (const headDim of [64, 128])
        for (const blockSize of [16, 32]) {
          const shape: Shape = {
            numQHeads: 8,
            numKvHeads: 8 / ratio,
            headDim,
            blockSize,
            cacheDtype: act,
            actDtype: act,
          };
          test(describeShape(shape), () => expectHalfActivationsMatch(mixedBatch, shape));
        }

  for (const headDim of [32, 40, 72, 96, 256]) {
    const shape: Shape = { numQHeads: 4, numKvHeads: 2, headDim, blockSize: 16, cacheDtype: "bf16", actDtype: "bf16" };
    test(describeShape(shape), () => expectHalfActivationsMatch(oddBatch, shape));
  }

  for (const act of ["bf16", "f16"] as DType[])
    test(`${act}: 1500 and 2100 tokens, GQA 8, peaked softmax`, () => {
      expectHalfActivationsMatch(longBatch, {
        numQHeads: 8,
        numKvHeads: 1,
        headDim: 128,
        blockSize: 16,
        cacheDtype: act,
        actDtype: act,
        qScale: 4,
      });
    });

  test("bf16: sliding window of 20 over a mixed batch", () => {
    expectHalfActivationsMatch([...mixedBatch, { cached: 100, queryLen: 40 }], {
      numQHeads: 8,
      numKvHeads: 2,
      headDim: 64,
      blockSize: 16,
      cacheDtype: "bf16",
      actDtype: "bf16",
      slidingWindow: 20,
    });
  });

  for (const act of ["bf16", "f16"] as DType[])
    test(`${act}: soft-capped scores over a mixed batch, window 20`, () => {
      expectHalfActivationsMatch([...mixedBatch, { cached: 100, queryLen: 40 }], {
        numQHeads: 8,
        numKvHeads: 2,
        headDim: 64,
        blockSize: 16,
        cacheDtype: act,
        actDtype: act,
        slidingWindow: 20,
        softCap: 5,
        qScale: 6,
      });
    });

  test("bf16: one KV head shared by 32 query heads", () => {
    expectHalfActivationsMatch(oddBatch, {
      numQHeads: 32,
      numKvHeads: 1,
      headDim: 64,
      blockSize: 16,
      cacheDtype: "bf16",
      actDtype: "bf16",
    });
  });

  test("bf16: block sizes 8 and 64", () => {
    for (const blockSize of [8, 64])
      expectHalfActivationsMatch(mixedBatch, {
        numQHeads: 4,
        numKvHeads: 1,
        headDim: 64,
        blockSize,
        cacheDtype: "bf16",
        actDtype: "bf16",
      });
  });

  // head_dim 256 runs 16 rows per warp (two lanes per row in the softmax): several warps, and
  // rows whose maximum moves from one key tile to the next (overflowing f16 if it were not
  // each row's true maximum).
  for (const act of ["bf16", "f16"] as DType[])
    test(`${act}: head_dim 256 over several key tiles, GQA 2, peaked softmax`, () => {
      const sequences = [
        { cached: 150, queryLen: 40 },
        { cached: 0, queryLen: 70 },
        { cached: 9, queryLen: 1 },
      ];
      expectHalfActivationsMatch(sequences, {
        numQHeads: 4,
        numKvHeads: 2,
        headDim: 256,
        blockSize: 16,
        cacheDtype: act,
        actDtype: act,
        qScale: 16,
      });
    });

  // The tensor-core kernel masks only the 64-key tiles that some row of a warp (32 rows) sees in
  // part: a chunk after every cached length from 0 to 64 puts each warp's first position on every
  // offset from a tile's end, where "seen whole" turns into "masked".
  test("bf16: causal tile edges, a 40-token chunk after 0 to 64 cached tokens", () => {
    const sequences = Array.from({ length: 65 }, (_, cached) => ({ cached, queryLen: 40 }));
    expectHalfActivationsMatch(sequences, {
      numQHeads: 4,
      numKvHeads: 2,
      headDim: 32,
      blockSize: 16,
      cacheDtype: "bf16",
      actDtype: "bf16",
    });
  });

  // Likewise for the window's lower edge: a window of 70 slides past the tiles' starts.
  test("bf16: window tile edges, chunks of 2 and 17 tokens after 60 to 99 cached, window 70", () => {
    const sequences = Array.from({ length: 14 }, (_, i) => [
      { cached: 60 + 3 * i, queryLen: 2 },
      { cached: 60 + 3 * i, queryLen: 17 },
    ]).flat();
    expectHalfActivationsMatch(sequences, {
      numQHeads: 4,
      numKvHeads: 2,
      headDim: 32,
      blockSize: 16,
      cacheDtype: "bf16",
      actDtype: "bf16",
      slidingWindow: 70,
    });
  });

  // q and out one element past a 16-byte boundary: loaded and stored element by element.
  test("bf16: q and out that are not 16-byte aligned", () => {
    const shape: Shape = {
      numQHeads: 8,
      numKvHeads: 2,
      headDim: 64,
      blockSize: 16,
      cacheDtype: "bf16",
      actDtype: "bf16",
    };
    const batch = prepareBatch(device, mixedBatch, shape);
    batch.args.q = offsetAddress(device.upload(Float32Array.of(0, ...batch.inputs.q), "bf16"), 2);
    batch.args.out = offsetAddress(device.alloc((batch.outLength + 1) * 2), 2);
    if (backend.name !== "cuda") {
      expect(() => backend.pagedAttention(batch.args)).toThrow(/status 3\): vt_paged_attention: .*f32 only/);
      return;
    }
    expectClose(runBatch(batch, shape), batch.expected, tolerance(shape));
  });
});

describe("batch edge cases", () => {
  test("a sequence with no query tokens computes nothing and leaves the others right", () => {
    expectMatchesReference(
      [
        { cached: 10, queryLen: 3 },
        { cached: 50, queryLen: 0 },
        { cached: 5, queryLen: 1 },
      ],
      { numQHeads: 4, numKvHeads: 2, headDim: 64, blockSize: 16, cacheDtype: "f32" },
    );
  });

  test("zero tokens is a no-op", () => {
    const batch = prepareBatch(device, [{ cached: 7, queryLen: 0 }], {
      numQHeads: 2,
      numKvHeads: 1,
      headDim: 64,
      blockSize: 16,
      cacheDtype: "f32",
    });
    device.backend.memset(batch.args.out, 0x7f, 4);
    device.backend.pagedAttention(batch.args);
    expect(Array.from(device.backend.download(new Uint8Array(4), batch.args.out))).toEqual([0x7f, 0x7f, 0x7f, 0x7f]);
  });

  // What a graph-captured step relies on: launch bounds larger than the batch needs.
  test("a max_seq_len above every seq_len changes nothing", () => {
    expectMatchesReference(
      mixedBatch,
      { numQHeads: 4, numKvHeads: 2, headDim: 64, blockSize: 16, cacheDtype: "f32" },
      {
        maxSeqLen: 5000,
      },
    );
  });

  // A decode batch padded to a captured size ends in sequences of seq_len 0 and one query token,
  // which see no key and get zeros (the CPU computes f32 activations only).
  for (const act of ["f32", "bf16"] as DType[])
    test(`padding sequences (seq_len 0, one query token) give zeros (${act} activations)`, () => {
      const shape: Shape = { numQHeads: 8, numKvHeads: 2, headDim: 64, blockSize: 16, cacheDtype: act, actDtype: act };
      const padded: Sequence[] = [
        { cached: 36, queryLen: 1 },
        { cached: -1, queryLen: 1 },
        { cached: 9, queryLen: 1 },
      ];
      const batch = prepareBatch(device, padded, shape, 1, { maxSeqLen: 1200 });
      if (backend.name === "cpu" && act !== "f32") {
        expect(() => backend.pagedAttention(batch.args)).toThrow(/status 3\): vt_paged_attention: .*f32 only/);
        return;
      }
      const out = runBatch(batch, shape);
      expectClose(out, batch.expected, tolerance(shape));
      expect(out.subarray(8 * 64, 16 * 64).every((x) => x === 0)).toBe(true);
    });

  // What --batch-invariant needs of the CPU kernel: a token attends the same way alone (a decode,
  // its last chunk of keys ending at its position) as inside a prefill chunk (the chunk ending
  // further on), so recomputing a preempted request's tokens together gives the same bits.
  if (backend.name === "cpu")
    test("a token's output is bit-identical as a decode and inside a prefill chunk", () => {
      const shape: Shape = { numQHeads: 8, numKvHeads: 2, headDim: 64, blockSize: 16, cacheDtype: "bf16" };
      const chunk = prepareBatch(device, [{ cached: 45, queryLen: 20 }], shape);
      const together = runBatch(chunk, shape);
      const rowLength = shape.numQHeads * shape.headDim;
      // Tokens 0, 5 and 19 of the chunk (positions 45, 50, 64): 14, 19 and 1 keys in their last chunk of 32.
      for (const token of [0, 5, 19]) {
        const out = device.alloc(rowLength * 4);
        backend.pagedAttention({
          ...chunk.args,
          out,
          q: offsetAddress(chunk.args.q, token * chunk.args.qRowStride * 4),
          seqLens: device.uploadInt32(Int32Array.of(45 + token + 1)),
          queryStartLoc: device.uploadInt32(Int32Array.of(0, 1)),
          numTokens: 1,
          maxQueryLen: 1,
        });
        expect(device.download(out, rowLength)).toEqual(together.subarray(token * rowLength, (token + 1) * rowLength));
      }
    });

  test("the result does not depend on the number of threads", async () => {
    const single = new Device(await Backend.open({ device: "cpu", numThreads: 1 }));
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

describe("graph capture", () => {
  // A decode step captured with padded bounds (max_seq_len 4096, a padding sequence) replays on
  // whatever the buffers hold at launch: shorter contexts, another padding row, new queries.
  test("a captured decode step replays on new sequence lengths and queries", () => {
    const shape: Shape = { numQHeads: 8, numKvHeads: 2, headDim: 64, blockSize: 16, cacheDtype: "bf16" };
    const step: Sequence[] = [
      { cached: 2099, queryLen: 1 },
      { cached: 600, queryLen: 1 },
      { cached: -1, queryLen: 1 },
    ];
    const batch = prepareBatch(device, step, shape, 3, { maxSeqLen: 4096 });
    // Run once outside the capture first, as an engine's warm-up does (the split-K scratch is
    // allocated then, never during a capture).
    expectClose(runBatch(batch, shape), batch.expected, tolerance(shape));
    const graph = backend.captureGraph(() => backend.pagedAttention(batch.args));
    try {
      backend.memset(batch.args.out, 0x7f, batch.outLength * 4);
      graph.launch();
      expectClose(device.download(batch.args.out, batch.outLength), batch.expected, tolerance(shape));

      const seqLens = Int32Array.of(1300, 0, 0);
      const q = randomValues(batch.inputs.q.length, 77);
      backend.upload(batch.args.seqLens, seqLens);
      backend.upload(batch.args.q, q);
      backend.memset(batch.args.out, 0x7f, batch.outLength * 4);
      graph.launch();
      expectClose(
        device.download(batch.args.out, batch.outLength),
        referenceOutput({ ...batch.inputs, seqLens, q }),
        tolerance(shape),
      );
    } finally {
      graph.destroy();
    }
  });

  // On a fresh context whose first attention call is being captured, nothing may be allocated:
  // the long decode runs unsplit, and the capture stays valid.
  test("a long decode captured before any eager call is still right", async () => {
    const fresh = new Device(await Backend.open({ device: "cpu" }));
    try {
      const shape: Shape = { numQHeads: 4, numKvHeads: 1, headDim: 64, blockSize: 16, cacheDtype: "bf16" };
      const batch = prepareBatch(
        fresh,
        [
          { cached: 1400, queryLen: 1 },
          { cached: 3, queryLen: 1 },
        ],
        shape,
        5,
      );
      const graph = fresh.backend.captureGraph(() => fresh.backend.pagedAttention(batch.args));
      try {
        graph.launch();
        expectClose(fresh.download(batch.args.out, batch.outLength), batch.expected, tolerance(shape));
      } finally {
        graph.destroy();
      }
    } finally {
      fresh.freeAll();
      fresh.backend.close();
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
    expectFailure((args) => (args.blockTables = NULL_ADDRESS), /status 1\): vt_paged_attention: .*NULL/);
  });

  test("a negative soft cap is an invalid argument", () => {
    expectFailure(
      (args) => (args.softCap = -1),
      /status 1\): vt_paged_attention: soft_cap must be 0 \(off\) or positive/,
    );
  });

  test("bf16 activations are unsupported with an f32 cache", () => {
    expectFailure(
      (args) => (args.actDtype = "bf16"),
      backend.name === "cpu"
        ? /status 3\): vt_paged_attention: .*f32 only/
        : /status 3\): vt_paged_attention: .*bf16 activations only with cache_dtype bf16/,
    );
  });

  test("head_dim must be a multiple of 8 on CUDA", () => {
    const run = () => {
      const batch = prepareBatch(device, mixedBatch, { ...shape, headDim: 36 });
      backend.pagedAttention(batch.args);
    };
    if (backend.name === "cuda") expect(run).toThrow(/status 3\): vt_paged_attention: head_dim 36/);
    else run();
  });

  test("query heads must be a multiple of KV heads", () => {
    expectFailure((args) => (args.numQHeads = 3), /status 1\): vt_paged_attention: num_q_heads \(3\)/);
  });

  // The CPU reads the index arrays on the host and rejects what a GPU kernel would misread. The
  // CUDA backend never reads device memory on the host (a step must be capturable): it accepts
  // these, and a kernel masks what it cannot use (keys of a negative block id, positions < 0).
  function expectHostCheck(change: (args: Batch["args"]) => void, pattern: RegExp): Batch | null {
    if (backend.name === "cpu") {
      expectFailure(change, pattern);
      return null;
    }
    const batch = prepareBatch(device, mixedBatch, shape);
    change(batch.args);
    backend.pagedAttention(batch.args);
    return batch;
  }

  test("a sequence shorter than its query is rejected (CPU)", () => {
    expectHostCheck((args) => {
      args.seqLens = device.uploadInt32([37, 10, 33]);
    }, /status 1\): vt_paged_attention: seq_lens\[1\] is shorter than its query/);
  });

  test("a bound below the batch's query length is rejected (CPU)", () => {
    expectHostCheck((args) => (args.maxQueryLen = 20), /status 1\): vt_paged_attention: sequence 2 .*max_query_len/);
  });

  test("a negative block id in a used block-table entry is rejected (CPU), masked (CUDA)", () => {
    const batch = expectHostCheck((args) => {
      args.blockTables = device.uploadInt32(new Int32Array(3 * args.maxBlocksPerSeq).fill(-1));
    }, /status 1\): vt_paged_attention: block table of sequence 0 has a negative block id/);
    if (batch) expect(device.download(batch.args.out, batch.outLength).every((x) => x === 0)).toBe(true);
  });

  test("out aliasing q is rejected", () => {
    expectFailure((args) => (args.out = args.q), /status 1\): vt_paged_attention: out must not alias q/);
  });
});
