// The mixture-of-experts ops (route, group, the experts' matmuls, combine with and without a
// shared expert) against the plain references, and the four chained into one MoE layer against a
// dense f64 computation.
import { describe, expect, test } from "bun:test";
import { offsetAddress } from "../../src/backend/address.ts";
import { type DType, encodeFromF32 } from "../../src/backend/dtype.ts";
import {
  ALL_QUANT_FORMATS,
  QUANT_FORMATS,
  type QuantFormat,
  type WeightFormat,
} from "../../src/backend/weight-format.ts";
import * as ref from "../../src/reference/moe.ts";
import { dequantize, quantize, quantizeActivations } from "../../src/reference/quant.ts";
import { expectClose, NULL_ADDRESS, randomValues, rounded, useTestDevice } from "../helpers/native.ts";

const device = await useTestDevice();
const backend = device.backend;

function route(logits: Float32Array, numExperts: number, topK: number, renormalize: boolean) {
  const numTokens = logits.length / numExperts;
  const expertIds = device.alloc(numTokens * topK * 4);
  const weights = device.alloc(numTokens * topK * 4);
  backend.moeRoute({
    logits: device.upload(logits),
    numTokens,
    numExperts,
    topK,
    renormalize,
    actDtype: "f32",
    expertIds,
    weights,
  });
  return {
    expertIds: device.downloadInt32(expertIds, numTokens * topK),
    weights: device.download(weights, numTokens * topK),
  };
}

function group(expertIds: Int32Array, numExperts: number) {
  const sortedSlots = device.alloc(Math.max(1, expertIds.length) * 4);
  const expertOffsets = device.alloc((numExperts + 1) * 4);
  backend.moeGroup({
    expertIds: device.uploadInt32(expertIds.length > 0 ? expertIds : [0]),
    numSlots: expertIds.length,
    numExperts,
    sortedSlots,
    expertOffsets,
  });
  return {
    sortedSlots: device.downloadInt32(sortedSlots, expertIds.length),
    offsets: device.downloadInt32(expertOffsets, numExperts + 1),
    addresses: { sortedSlots, expertOffsets },
  };
}

/** Stacked experts' quantized matrices on the device, each packed on its own. */
function uploadExperts(format: QuantFormat, blocks: Uint8Array, numExperts: number, n: number, k: number) {
  const w = device.alloc(blocks.byteLength);
  backend.upload(w, blocks);
  const expertBytes = blocks.byteLength / numExperts;
  for (let e = 0; e < numExperts; e++) backend.packWeights({ w: offsetAddress(w, e * expertBytes), n, k, format });
  return w;
}

/** Expert ids with the given count of slots each, in an order shuffled by `seed`. */
function shuffledExpertIds(slotsPerExpert: number[], seed: number): Int32Array {
  const ids = Int32Array.from(slotsPerExpert.flatMap((count, e) => new Array<number>(count).fill(e)));
  const keys = randomValues(ids.length, seed);
  const order = Array.from(ids.keys()).sort((a, b) => keys[a]! - keys[b]!);
  return Int32Array.from(order, (i) => ids[i]!);
}

describe("vt_moe_route", () => {
  for (const [numExperts, topK] of [
    [8, 1],
    [8, 2],
    [64, 8],
    [128, 8],
  ] as const)
    for (const renormalize of [false, true])
      test(`softmax, then the top ${topK} of ${numExperts} experts${renormalize ? ", renormalized" : ""}`, () => {
        const logits = randomValues(13 * numExperts, numExperts + topK, 4);
        const actual = route(logits, numExperts, topK, renormalize);
        const expected = ref.moeRoute(logits, numExperts, topK, renormalize);
        expect(Array.from(actual.expertIds)).toEqual(Array.from(expected.expertIds));
        expectClose(actual.weights, expected.weights, { rtol: 1e-5, atol: 1e-7 });
      });

  test("ties go to the lower expert id; a uniform router gives equal weights", () => {
    const numExperts = 8;
    const logits = Float32Array.from([
      ...[0, 3, 3, 1, 3, 0, 0, 0], // three tied for first
      ...new Array(numExperts).fill(0.5), // all tied
    ]);
    const actual = route(logits, numExperts, 2, true);
    expect(Array.from(actual.expertIds)).toEqual([1, 2, 0, 1]);
    expectClose(actual.weights, Float32Array.from([0.5, 0.5, 0.5, 0.5]));
    const all = route(logits.subarray(numExperts), numExperts, numExperts, false);
    expect(Array.from(all.expertIds)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expectClose(all.weights, new Float32Array(numExperts).fill(1 / 8));
  });

  test("bad sizes are refused naming the op", () => {
    const buffer = device.alloc(64);
    const args = {
      logits: buffer,
      numTokens: 1,
      numExperts: 4,
      topK: 5,
      renormalize: false,
      actDtype: "f32" as DType,
      expertIds: buffer,
      weights: buffer,
    };
    expect(() => backend.moeRoute(args)).toThrow(/status 1\): vt_moe_route: top_k must be/);
    expect(() => backend.moeRoute({ ...args, topK: 1, numExperts: 2000 })).toThrow(/num_experts must be/);
    expect(() => backend.moeRoute({ ...args, topK: 1, expertIds: NULL_ADDRESS })).toThrow(/NULL/);
  });
});

describe("vt_moe_group", () => {
  test("a stable counting sort of the slots by expert, empty experts included", () => {
    const expertIds = Int32Array.from([3, 0, 3, 5, 0, 3, 7, 7, 0, 3]);
    const actual = group(expertIds, 9);
    const expected = ref.moeGroup(expertIds, 9);
    expect(Array.from(actual.offsets)).toEqual(Array.from(expected.offsets));
    expect(Array.from(actual.sortedSlots)).toEqual(Array.from(expected.sortedSlots));
    expect(Array.from(actual.offsets)).toEqual([0, 3, 3, 3, 7, 7, 8, 8, 10, 10]);
  });

  test("every slot to one expert, and none at all", () => {
    const one = group(new Int32Array(20).fill(2), 4);
    expect(Array.from(one.offsets)).toEqual([0, 0, 0, 20, 20]);
    expect(Array.from(one.sortedSlots)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(Array.from(group(new Int32Array(0), 4).offsets)).toEqual([0, 0, 0, 0, 0]);
  });

  for (const numExperts of [1, 8, 60, 128, 1024])
    test(`a prefill's slots (30,011 over ${numExperts} experts, some more used than others) keep their order per expert`, () => {
      // 30,011 slots split into parts that do not divide them; the draw is skewed towards low ids.
      const uniform = randomValues(30_011, 40 + numExperts);
      const expertIds = Int32Array.from(uniform, (u) =>
        Math.min(numExperts - 1, Math.floor(((u + 1) / 2) ** 3 * numExperts)),
      );
      const actual = group(expertIds, numExperts);
      const expected = ref.moeGroup(expertIds, numExperts);
      expect(Array.from(actual.offsets)).toEqual(Array.from(expected.offsets));
      expect(Array.from(actual.sortedSlots)).toEqual(Array.from(expected.sortedSlots));
    });
});

describe("vt_moe_matmul", () => {
  const weightDtypes: DType[] = ["f32", "f16", "bf16"];
  for (const weightDtype of weightDtypes)
    for (const slotsPerXRow of [1, 2])
      test(`each slot times its expert's matrix, x of ${slotsPerXRow === 1 ? "slots" : "tokens"} (${weightDtype} weights)`, () => {
        const numExperts = 6;
        const n = 40;
        const k = 72;
        // Experts 1 and 4 get nothing; expert 2 gets 5 slots (more than a warp's rows at a time).
        const expertIds = Int32Array.from([2, 0, 2, 3, 2, 5, 2, 0, 2, 3]);
        const numSlots = expertIds.length;
        const x = randomValues((numSlots / slotsPerXRow) * k, 31);
        const w = rounded(randomValues(numExperts * n * k, 32, 0.2), weightDtype);
        const groups = group(expertIds, numExperts);
        const before = new Float32Array(numSlots * n).fill(7);
        const out = device.upload(before);
        backend.moeMatmul({
          x: device.upload(x),
          slotsPerXRow,
          w: device.upload(w, weightDtype),
          ...groups.addresses,
          out,
          numSlots,
          numExperts,
          n,
          k,
          actDtype: "f32",
          weightDtype,
        });
        // With bf16 weights the CPU multiplies x rounded to bf16 (as vt_matmul does).
        const xRead = backend.name === "cpu" && weightDtype === "bf16" ? rounded(x, "bf16") : x;
        const expected = ref.moeMatmul({
          x: xRead,
          slotsPerXRow,
          w,
          groups: ref.moeGroup(expertIds, numExperts),
          out: before,
          n,
          k,
        });
        expectClose(device.download(out, numSlots * n), expected, { rtol: 1e-5, atol: 1e-5 });
      });

  // Quantized experts: each expert's matrix packed on its own, as a GGUF file's stacked experts
  // would be. x is quantized to int8 per block, as vt_matmul's decode does, on both backends.
  test.each(ALL_QUANT_FORMATS)(
    "quantized expert weights (%s): each slot times its expert's dequantized matrix",
    (format) => {
      const numExperts = 3;
      const n = 20;
      const k = QUANT_FORMATS[format].blockElements === 32 ? 96 : 256;
      const expertIds = Int32Array.from([2, 0, 2, 2, 0, 2, 2]);
      const numSlots = expertIds.length;
      const x = randomValues(numSlots * k, 61);
      const blocks = quantize(format, randomValues(numExperts * n * k, 62, 0.5));
      const w = uploadExperts(format, blocks, numExperts, n, k);
      const groups = group(expertIds, numExperts);
      const out = device.alloc(numSlots * n * 4);
      backend.moeMatmul({
        x: device.upload(x),
        slotsPerXRow: 1,
        w,
        ...groups.addresses,
        out,
        numSlots,
        numExperts,
        n,
        k,
        actDtype: "f32",
        weightDtype: format,
      });
      const expected = ref.moeMatmul({
        x: quantizeActivations(x, format),
        slotsPerXRow: 1,
        w: dequantize(format, blocks),
        groups: ref.moeGroup(expertIds, numExperts),
        out: new Float32Array(numSlots * n),
        n,
        k,
      });
      expectClose(device.download(out, numSlots * n), expected, { rtol: 1e-4, atol: 1e-4 });
    },
  );

  test("offsets that do not cover the slots are refused where the host reads them (CPU)", () => {
    if (backend.name !== "cpu") return;
    const groups = group(Int32Array.from([0, 1]), 2);
    backend.upload(groups.addresses.expertOffsets, Int32Array.from([0, 1, 5]));
    const buffer = device.alloc(1024);
    expect(() =>
      backend.moeMatmul({
        x: buffer,
        slotsPerXRow: 1,
        w: buffer,
        ...groups.addresses,
        out: buffer,
        numSlots: 2,
        numExperts: 2,
        n: 4,
        k: 4,
        actDtype: "f32",
        weightDtype: "f32",
      }),
    ).toThrow(/vt_moe_matmul: expert_offsets must start at 0 and end at num_slots/);
  });
});

// 16-bit activations (the CUDA backend's model path): below 8 slots per expert on average the
// gather GEMV, past it the tensor cores' tile over each expert's slots: 64-row tiles up to 64
// slots per expert on average, 128-row ones beyond, an expert's slots spread over several tiles
// (the last one partial), experts with none, n off the tile widths, x of tokens or of slots, and
// once x unaligned (which the tiled kernel's 16-byte loads leave to the gather GEMV). Plain
// weights in the activations' dtype and quantized ones. The CPU computes in f32 and refuses them (status 3).
describe("vt_moe_matmul with 16-bit activations", () => {
  const halfUlp = { bf16: 2 ** -8, f16: 2 ** -11 } as const;
  type Case = [
    weights: "plain" | QuantFormat,
    slotsPerExpert: number[],
    n: number,
    slotsPerXRow: number,
    dtype: "bf16" | "f16",
    xOffset: number,
  ];
  const cases: Case[] = [
    ["plain", [2, 0, 5, 1], 40, 1, "bf16", 0],
    ["q4_k", [2, 0, 5, 1], 40, 2, "f16", 0],
    ["plain", [0, 150, 3, 37], 72, 2, "bf16", 0],
    ["plain", [0, 150, 3, 37], 72, 1, "f16", 2],
    ["q8_0", [0, 150, 3, 37], 136, 1, "bf16", 0],
    ["q4_k", [300, 0, 1, 41], 72, 2, "bf16", 0],
    ["q6_k", [300, 0, 1, 41], 136, 1, "f16", 0],
    // More experts than the tile scan loads in one pass (128), a few used on either side of it.
    ["plain", Array.from({ length: 200 }, (_, e) => (e % 37 === 5 ? 3 : 0)), 40, 1, "bf16", 0],
    ["q4_k", Array.from({ length: 200 }, (_, e) => (e % 37 === 5 ? 3 : 0)), 40, 1, "bf16", 0],
    ["plain", Array.from({ length: 160 }, (_, e) => (e % 3 === 0 ? 24 : 0)), 40, 1, "bf16", 0],
  ];
  test.each(cases)(
    "%s weights, slots per expert %j, n = %i, %i slot(s) per x row, %s (x offset %i bytes)",
    (weights, slotsPerExpert, n, slotsPerXRow, dtype, xOffset) => {
      const numExperts = slotsPerExpert.length;
      const k = weights === "plain" ? 72 : QUANT_FORMATS[weights].blockElements === 32 ? 96 : 256;
      const expertIds = shuffledExpertIds(slotsPerExpert, 81);
      const numSlots = expertIds.length;
      const xRows = numSlots / slotsPerXRow;
      const x = rounded(randomValues(xRows * k, 82), dtype);
      const xBase = device.alloc(xRows * k * 2 + xOffset);
      const xAddress = offsetAddress(xBase, xOffset);
      backend.upload(xAddress, encodeFromF32(x, dtype));
      const values = randomValues(numExperts * n * k, 83, 0.5);
      const blocks = weights === "plain" ? null : quantize(weights, values);
      const w =
        blocks === null
          ? device.upload(values, dtype)
          : uploadExperts(weights as QuantFormat, blocks, numExperts, n, k);
      const weightDtype: WeightFormat = weights === "plain" ? dtype : weights;
      const groups = group(expertIds, numExperts);
      const out = device.alloc(numSlots * n * 2);
      const ran = device.ranWithHalfActivations("vt_moe_matmul", () =>
        backend.moeMatmul({
          x: xAddress,
          slotsPerXRow,
          w,
          ...groups.addresses,
          out,
          numSlots,
          numExperts,
          n,
          k,
          actDtype: dtype,
          weightDtype,
        }),
      );
      if (!ran) return;
      // The tiled kernel rounds dequantized weights to the activations' dtype as it stages them;
      // the gather GEMV multiplies quantized ones with x quantized to int8.
      const tiled = numSlots >= 8 * numExperts;
      const wRead = blocks === null ? rounded(values, dtype) : dequantize(weights as QuantFormat, blocks);
      const expected = ref.moeMatmul({
        x: blocks !== null && !tiled ? quantizeActivations(x, weights as QuantFormat) : x,
        slotsPerXRow,
        w: tiled ? rounded(wRead, dtype) : wRead,
        groups: ref.moeGroup(expertIds, numExperts),
        out: new Float32Array(numSlots * n),
        n,
        k,
      });
      expectClose(device.download(out, numSlots * n, dtype), expected, {
        rtol: halfUlp[dtype],
        atol: 1e-5 * Math.sqrt(k),
      });
    },
  );
});

describe("vt_moe_combine", () => {
  test("each token's slots summed with its weights", () => {
    const numTokens = 5;
    const topK = 3;
    const d = 70;
    const x = randomValues(numTokens * topK * d, 41);
    const weights = randomValues(numTokens * topK, 42).map(Math.abs);
    const out = device.alloc(numTokens * d * 4);
    backend.moeCombine({
      x: device.upload(x),
      weights: device.upload(weights),
      out,
      numTokens,
      topK,
      d,
      actDtype: "f32",
    });
    expectClose(device.download(out, numTokens * d), ref.moeCombine(x, weights, topK, d), { rtol: 1e-5, atol: 1e-6 });
  });

  test("a shared expert's rows are added, each scaled by the sigmoid of its token's gate logit", () => {
    const numTokens = 6;
    const topK = 2;
    const d = 45;
    const x = randomValues(numTokens * topK * d, 43);
    const weights = randomValues(numTokens * topK, 44).map(Math.abs);
    const shared = { x: randomValues(numTokens * d, 45), gate: randomValues(numTokens, 46, 8) };
    // Gates far out on both sides: the shared expert all but off, and fully on.
    shared.gate[0] = -30;
    shared.gate[1] = 30;
    const out = device.alloc(numTokens * d * 4);
    backend.moeCombine({
      x: device.upload(x),
      weights: device.upload(weights),
      shared: { x: device.upload(shared.x), gate: device.upload(shared.gate) },
      out,
      numTokens,
      topK,
      d,
      actDtype: "f32",
    });
    const actual = device.download(out, numTokens * d);
    const expected = ref.moeCombine(x, weights, topK, d, shared);
    expectClose(actual, expected, { rtol: 1e-5, atol: 1e-6 });
    const routedOnly = ref.moeCombine(x, weights, topK, d);
    expectClose(actual.subarray(0, d), routedOnly.subarray(0, d), { rtol: 1e-5, atol: 1e-6 });
    expectClose(
      actual.subarray(d, 2 * d),
      routedOnly.subarray(d, 2 * d).map((v, i) => v + shared.x[d + i]!),
      { rtol: 1e-5, atol: 1e-6 },
    );
  });
});

/** Sizes of one MoE layer under test. */
interface LayerShape {
  numExperts: number;
  topK: number;
  numTokens: number;
  hidden: number;
  inter: number;
}

/**
 * An MoE layer's buffers on the device: route -> group -> gate_up per slot -> SiLU-and-mul -> down
 * per slot -> combine, enqueued by enqueue() on whatever x and router logits hold then.
 */
function moeLayer(shape: LayerShape, gateUp: Float32Array, down: Float32Array) {
  const { numExperts, topK, numTokens, hidden, inter } = shape;
  const numSlots = numTokens * topK;
  const b = {
    x: device.alloc(numTokens * hidden * 4),
    router: device.alloc(numTokens * numExperts * 4),
    gateUp: device.upload(gateUp),
    down: device.upload(down),
    expertIds: device.alloc(numSlots * 4),
    weights: device.alloc(numSlots * 4),
    sortedSlots: device.alloc(numSlots * 4),
    expertOffsets: device.alloc((numExperts + 1) * 4),
    gateUpOut: device.alloc(numSlots * 2 * inter * 4),
    activated: device.alloc(numSlots * inter * 4),
    downOut: device.alloc(numSlots * hidden * 4),
    out: device.alloc(numTokens * hidden * 4),
  };
  const enqueue = () => {
    const f32 = "f32" as DType;
    backend.moeRoute({
      logits: b.router,
      numTokens,
      numExperts,
      topK,
      renormalize: true,
      actDtype: f32,
      expertIds: b.expertIds,
      weights: b.weights,
    });
    const groups = { sortedSlots: b.sortedSlots, expertOffsets: b.expertOffsets };
    backend.moeGroup({ expertIds: b.expertIds, numSlots, numExperts, ...groups });
    const common = { ...groups, numSlots, numExperts, actDtype: f32, weightDtype: f32 };
    backend.moeMatmul({
      ...common,
      x: b.x,
      slotsPerXRow: topK,
      w: b.gateUp,
      out: b.gateUpOut,
      n: 2 * inter,
      k: hidden,
    });
    backend.siluAndMul({ x: b.gateUpOut, out: b.activated, numTokens: numSlots, d: inter, actDtype: f32 });
    backend.moeMatmul({ ...common, x: b.activated, slotsPerXRow: 1, w: b.down, out: b.downOut, n: hidden, k: inter });
    backend.moeCombine({ x: b.downOut, weights: b.weights, out: b.out, numTokens, topK, d: hidden, actDtype: f32 });
  };
  const run = (x: Float32Array, router: Float32Array, launch: () => void) => {
    backend.upload(b.x, x);
    backend.upload(b.router, router);
    launch();
    return device.download(b.out, numTokens * hidden);
  };
  return { enqueue, run };
}

/** The layer computed densely in f64: each token through its top_k experts' MLPs, weighted. */
function denseLayer(
  shape: LayerShape,
  x: Float32Array,
  router: Float32Array,
  gateUp: Float32Array,
  down: Float32Array,
) {
  const { numExperts, topK, numTokens, hidden, inter } = shape;
  const routing = ref.moeRoute(router, numExperts, topK, true);
  const expected = new Float32Array(numTokens * hidden);
  for (let t = 0; t < numTokens; t++)
    for (let j = 0; j < topK; j++) {
      const e = routing.expertIds[t * topK + j]!;
      const act = Array.from({ length: inter }, (_, i) => {
        let g = 0;
        let u = 0;
        for (let c = 0; c < hidden; c++) {
          g += x[t * hidden + c]! * gateUp[(e * 2 * inter + i) * hidden + c]!;
          u += x[t * hidden + c]! * gateUp[(e * 2 * inter + inter + i) * hidden + c]!;
        }
        return (g / (1 + Math.exp(-g))) * u;
      });
      for (let c = 0; c < hidden; c++) {
        let sum = 0;
        for (let i = 0; i < inter; i++) sum += act[i]! * down[(e * hidden + c) * inter + i]!;
        expected[t * hidden + c]! += routing.weights[t * topK + j]! * sum;
      }
    }
  return expected;
}

describe("a mixture-of-experts layer", () => {
  const tolerance = { rtol: 1e-4, atol: 1e-5 };
  for (const [numExperts, topK, numTokens] of [
    [8, 2, 1],
    [8, 2, 9],
    [64, 8, 3],
  ] as const)
    test(`${numExperts} experts, top ${topK}, ${numTokens} token(s), against the dense f64 layer`, () => {
      const shape = { numExperts, topK, numTokens, hidden: 32, inter: 24 };
      const gateUp = randomValues(numExperts * 2 * shape.inter * shape.hidden, 53, 0.3);
      const down = randomValues(numExperts * shape.hidden * shape.inter, 54, 0.3);
      const x = randomValues(numTokens * shape.hidden, 51);
      const router = randomValues(numTokens * numExperts, 52, 3);
      const layer = moeLayer(shape, gateUp, down);
      expectClose(layer.run(x, router, layer.enqueue), denseLayer(shape, x, router, gateUp, down), tolerance);
    });

  // Nothing of the routing is read on the host, so a captured layer follows new router logits.
  test("a captured layer replays on new inputs and routes", () => {
    const shape = { numExperts: 16, topK: 4, numTokens: 5, hidden: 32, inter: 24 };
    const gateUp = randomValues(shape.numExperts * 2 * shape.inter * shape.hidden, 71, 0.3);
    const down = randomValues(shape.numExperts * shape.hidden * shape.inter, 72, 0.3);
    const layer = moeLayer(shape, gateUp, down);
    const graph = backend.captureGraph(layer.enqueue);
    try {
      for (const seed of [73, 75]) {
        const x = randomValues(shape.numTokens * shape.hidden, seed);
        const router = randomValues(shape.numTokens * shape.numExperts, seed + 1, 3);
        const replayed = layer.run(x, router, () => graph.launch());
        expectClose(replayed, denseLayer(shape, x, router, gateUp, down), tolerance);
      }
    } finally {
      graph.destroy();
    }
  });
});
