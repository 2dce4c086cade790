// `bench kernels --sweep moe`: vt_moe_matmul, the experts' two linear layers of a mixture-of-
// experts layer in one call each, at decode (1 token: top_k slots, each used expert's weights read
// once: bound by the weights' bytes) and prefill-sized batches (bound by compute, in TFLOP/s).
// Each call routes a different set of random router logits, so successive calls read other
// experts, as successive layers would, instead of finding the last call's experts in cache.

import { offsetAddress } from "../../backend/address.ts";
import type { Address, Backend } from "../../backend/backend.ts";
import { type DType, dtypeBytes } from "../../backend/dtype.ts";
import { storageBytes, type WeightFormat } from "../../backend/weight-format.ts";
import { formatTable } from "../report.ts";
import { errorMessage, type FailedCase, type MemoryBaselines } from "./decode-attention-sweep.ts";
import { bestSeconds, figure, fillWeights, round, type TimingOptions } from "./timing.ts";

/** A mixture-of-experts layer's shape. */
export interface MoeShape {
  name: string;
  numExperts: number;
  topK: number;
  hiddenSize: number;
  /** Each expert's MLP width (moe_intermediate_size). */
  expertIntermediateSize: number;
}

/** Qwen/Qwen3-30B-A3B's experts: 128 of width 768, 8 per token. */
export const QWEN3_30B_A3B_MOE: MoeShape = {
  name: "qwen3-30b-a3b",
  numExperts: 128,
  topK: 8,
  hiddenSize: 2048,
  expertIntermediateSize: 768,
};

/** mistralai/Mixtral-8x7B's experts: 8 of width 14336, 2 per token. */
export const MIXTRAL_8X7B_MOE: MoeShape = {
  name: "mixtral-8x7b",
  numExperts: 8,
  topK: 2,
  hiddenSize: 4096,
  expertIntermediateSize: 14336,
};

/** A shape small enough for rehearsals on the CUDA emulation and for tests. */
export const TINY_MOE: MoeShape = { name: "tiny", numExperts: 8, topK: 2, hiddenSize: 64, expertIntermediateSize: 32 };

export const MOE_SHAPES = [QWEN3_30B_A3B_MOE, MIXTRAL_8X7B_MOE, TINY_MOE];

export interface MoeRow {
  model: string;
  layer: "gate_up" | "down";
  tokens: number;
  slots: number;
  /** Experts with at least one slot, averaged over the rotated routings. */
  experts_used: number;
  n: number;
  k: number;
  act_dtype: DType;
  weight_dtype: WeightFormat;
  time_us: number;
  tflops: number;
  /** The used experts' weight bytes per second: the bound at few tokens. */
  weight_gbs: number;
  fraction_of_copy_bandwidth: number;
  fraction_of_peak_bandwidth?: number;
}

export interface MoeSetup {
  shapes: MoeShape[];
  tokenCounts: number[];
  actDtype: DType;
  weightDtype: WeightFormat;
  timing: TimingOptions;
}

export type FailedMoe = { model: string; tokens: number } & FailedCase;

/** Routings rotated through, so that successive calls find different experts. */
const ROUTINGS = 8;

interface Routing {
  sortedSlots: Address;
  expertOffsets: Address;
  expertsUsed: number;
}

/** ROUTINGS groupings of `tokens` tokens' slots, from random router logits routed on the device. */
function randomRoutings(backend: Backend, shape: MoeShape, tokens: number, actDtype: DType, seed: number): Routing[] {
  const { numExperts, topK } = shape;
  const slots = tokens * topK;
  const logits = backend.malloc(tokens * numExperts * dtypeBytes(actDtype));
  const expertIds = backend.malloc(slots * 4);
  const weights = backend.malloc(slots * 4);
  try {
    return Array.from({ length: ROUTINGS }, (_, r) => {
      backend.fillUniform(logits, actDtype, tokens * numExperts, seed + r, 4);
      backend.moeRoute({
        logits,
        numTokens: tokens,
        numExperts,
        topK,
        renormalize: true,
        actDtype,
        expertIds,
        weights,
      });
      const routing = { sortedSlots: backend.malloc(slots * 4), expertOffsets: backend.malloc((numExperts + 1) * 4) };
      backend.moeGroup({ expertIds, numSlots: slots, numExperts, ...routing });
      const offsets = backend.download(new Int32Array(numExperts + 1), routing.expertOffsets);
      let used = 0;
      for (let e = 0; e < numExperts; e++) if (offsets[e + 1]! > offsets[e]!) used++;
      return { ...routing, expertsUsed: used };
    });
  } finally {
    for (const address of [logits, expertIds, weights]) backend.free(address);
  }
}

function timeShape(
  backend: Backend,
  shape: MoeShape,
  tokens: number,
  setup: MoeSetup,
  baselines: MemoryBaselines,
): MoeRow[] {
  const { numExperts, topK, hiddenSize: h, expertIntermediateSize: inter } = shape;
  const { actDtype, weightDtype } = setup;
  const slots = tokens * topK;
  const layers = [
    { layer: "gate_up" as const, n: 2 * inter, k: h, xRows: tokens, slotsPerXRow: topK },
    { layer: "down" as const, n: h, k: inter, xRows: slots, slotsPerXRow: 1 },
  ];
  const routings = randomRoutings(backend, shape, tokens, actDtype, 17);
  const allocated: Address[] = routings.flatMap((r) => [r.sortedSlots, r.expertOffsets]);
  try {
    const expertsUsed = routings.reduce((sum, r) => sum + r.expertsUsed, 0) / routings.length;
    return layers.map(({ layer, n, k, xRows, slotsPerXRow }) => {
      const expertBytes = storageBytes(weightDtype, n * k);
      const w = backend.malloc(numExperts * expertBytes);
      const x = backend.malloc(xRows * k * dtypeBytes(actDtype));
      const out = backend.malloc(slots * n * dtypeBytes(actDtype));
      allocated.push(w, x, out);
      for (let e = 0; e < numExperts; e++)
        fillWeights(backend, offsetAddress(w, e * expertBytes), weightDtype, n, k, 23 + e);
      backend.fillUniform(x, actDtype, xRows * k, 29, 1);
      const seconds = bestSeconds(
        backend,
        setup.timing,
        (call) => {
          const routing = routings[call % ROUTINGS]!;
          backend.moeMatmul({
            x,
            slotsPerXRow,
            w,
            sortedSlots: routing.sortedSlots,
            expertOffsets: routing.expertOffsets,
            out,
            numSlots: slots,
            numExperts,
            n,
            k,
            actDtype,
            weightDtype,
          });
        },
        ROUTINGS,
      );
      const weightGBps = (expertsUsed * expertBytes) / seconds / 1e9;
      return {
        model: shape.name,
        layer,
        tokens,
        slots,
        experts_used: round(expertsUsed),
        n,
        k,
        act_dtype: actDtype,
        weight_dtype: weightDtype,
        time_us: round(seconds * 1e6),
        tflops: round((2 * slots * n * k) / seconds / 1e12),
        weight_gbs: round(weightGBps),
        fraction_of_copy_bandwidth: round(weightGBps / baselines.copyBandwidthGBs),
        ...(baselines.peakBandwidthGBs !== null
          ? { fraction_of_peak_bandwidth: round(weightGBps / baselines.peakBandwidthGBs) }
          : {}),
      };
    });
  } finally {
    for (const address of allocated) backend.free(address);
  }
}

export function runMoeSweep(
  backend: Backend,
  setup: MoeSetup,
  baselines: MemoryBaselines,
): { rows: MoeRow[]; failed: FailedMoe[] } {
  const rows: MoeRow[] = [];
  const failed: FailedMoe[] = [];
  for (const shape of setup.shapes)
    for (const tokens of setup.tokenCounts) {
      try {
        rows.push(...timeShape(backend, shape, tokens, setup, baselines));
      } catch (error) {
        failed.push({ model: shape.name, tokens, error: errorMessage(error) });
      }
    }
  return { rows, failed };
}

/** One line per model, layer and token count. */
export function printMoeSweep({ rows, failed }: { rows: MoeRow[]; failed: FailedMoe[] }): void {
  console.log("\nmixture-of-experts matmul (vt_moe_matmul), weights of the experts used");
  const header = ["model", "layer", "tokens", "experts used", "n x k", "time us", "TFLOP/s", "weight GB/s", "of peak"];
  const body = rows.map((r) => [
    r.model,
    r.layer,
    String(r.tokens),
    figure(r.experts_used),
    `${r.n} x ${r.k}`,
    figure(r.time_us),
    figure(r.tflops),
    figure(r.weight_gbs),
    r.fraction_of_peak_bandwidth === undefined ? "-" : `${(100 * r.fraction_of_peak_bandwidth).toFixed(0)}%`,
  ]);
  console.log(formatTable([header, ...body]));
  for (const f of failed) console.log(`failed ${f.model} at ${f.tokens} tokens: ${f.error}`);
}
