// `bench kernels --sweep decode-attention`: paged attention for one new token per sequence over
// batch sizes x context lengths. Decode attention reads every cached K and V once and does ~2
// FLOP per byte read, so it is bound by memory bandwidth: the figure is KV bytes read per second,
// as a fraction of the copy bandwidth measured in the same run and of the device's peak (when the
// device is in device-peaks.ts). Small caches rotate through copies so that they come from DRAM,
// not from the L2 cache; a combination whose cache does not fit in free memory is skipped.
import type { Backend } from "../../backend/backend.ts";
import type { DType } from "../../backend/dtype.ts";
import { formatTable } from "../report.ts";
import type { KernelModel } from "./model-shapes.ts";
import { type PagedAttentionCase, planPagedAttention, timePagedAttention } from "./paged-attention-timing.ts";
import { figure, round, type TimingOptions } from "./timing.ts";

export interface AttentionSweepSetup {
  model: KernelModel;
  blockSize: number;
  actDtype: DType;
  cacheDtype: DType;
  timing: TimingOptions;
  /** A case may allocate at most this fraction of the device's free memory. */
  memoryFraction: number;
}

export interface MemoryBaselines {
  copyBandwidthGBs: number;
  /** null when the device is not in the peak table. */
  peakBandwidthGBs: number | null;
}

export interface DecodeAttentionRow {
  batch_size: number;
  context_len: number;
  time_us: number;
  /** K and V bytes of the batch's cached tokens: 2 * batch * context * kv_heads * head_dim * 2. */
  kv_bytes: number;
  kv_read_gbs: number;
  fraction_of_copy_bandwidth: number;
  /** Absent when the device's peak is not known. */
  fraction_of_peak_bandwidth?: number;
  /** Copies of the cache the timing rotated through (more than one only for small caches). */
  kv_copies: number;
}

export interface SkippedCase {
  batch_size: number;
  context_len: number;
  /** Device bytes the case needs with a single copy of its cache. */
  needed_bytes: number;
  budget_bytes: number;
  reason: string;
}

/** A case whose op failed (an unsupported shape, a kernel error): the sweep goes on without it. */
export interface FailedCase {
  error: string;
}

export interface DecodeAttentionSweep {
  results: DecodeAttentionRow[];
  skipped: SkippedCase[];
  failed: ({ batch_size: number; context_len: number } & FailedCase)[];
}

export const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error));

export function runDecodeAttentionSweep(
  backend: Backend,
  setup: AttentionSweepSetup,
  grid: { batchSizes: number[]; contextLens: number[]; coldBytes: number },
  baselines: MemoryBaselines,
): DecodeAttentionSweep {
  const { model } = setup;
  const sweep: DecodeAttentionSweep = { results: [], skipped: [], failed: [] };
  for (const batch of grid.batchSizes) {
    for (const context of grid.contextLens) {
      const c: PagedAttentionCase = {
        numSeqs: batch,
        queryLen: 1,
        seqLen: context,
        numQHeads: model.numQHeads,
        numKvHeads: model.numKvHeads,
        headDim: model.headDim,
        blockSize: setup.blockSize,
        actDtype: setup.actDtype,
        cacheDtype: setup.cacheDtype,
      };
      const budget = Math.floor(backend.memoryInfo().freeBytes * setup.memoryFraction);
      const plan = planPagedAttention(c, grid.coldBytes, budget);
      if (plan === null) {
        const needed = planPagedAttention(c, 0, Infinity)!.deviceBytes;
        sweep.skipped.push({
          batch_size: batch,
          context_len: context,
          needed_bytes: needed,
          budget_bytes: budget,
          reason: "KV cache does not fit in free memory",
        });
        continue;
      }
      let seconds: number;
      try {
        seconds = timePagedAttention(backend, setup.timing, c, plan.copies);
      } catch (error) {
        sweep.failed.push({ batch_size: batch, context_len: context, error: errorMessage(error) });
        continue;
      }
      const gbs = plan.kvBytes / seconds / 1e9;
      sweep.results.push({
        batch_size: batch,
        context_len: context,
        time_us: round(seconds * 1e6),
        kv_bytes: plan.kvBytes,
        kv_read_gbs: round(gbs),
        fraction_of_copy_bandwidth: round(gbs / baselines.copyBandwidthGBs),
        ...(baselines.peakBandwidthGBs !== null
          ? { fraction_of_peak_bandwidth: round(gbs / baselines.peakBandwidthGBs) }
          : {}),
        kv_copies: plan.copies,
      });
    }
  }
  return sweep;
}

/** Batch sizes down, context lengths across: KV GB/s, then the fraction of peak (or of the copy). */
export function printDecodeAttentionSweep(
  sweep: DecodeAttentionSweep,
  grid: { batchSizes: number[]; contextLens: number[] },
  baselines: MemoryBaselines,
): void {
  const cell = (batch: number, context: number, show: (row: DecodeAttentionRow) => string) => {
    const row = sweep.results.find((r) => r.batch_size === batch && r.context_len === context);
    return row ? show(row) : "-";
  };
  const matrix = (title: string, show: (row: DecodeAttentionRow) => string) =>
    formatTable([
      [title, ...grid.contextLens.map(String)],
      ...grid.batchSizes.map((b) => [`batch ${b}`, ...grid.contextLens.map((c) => cell(b, c, show))]),
    ]);
  console.log("\ndecode paged attention: KV read GB/s (batch x context tokens)");
  console.log(matrix("GB/s", (r) => figure(r.kv_read_gbs)));
  const ofPeak = baselines.peakBandwidthGBs !== null;
  console.log(
    `\ndecode paged attention: fraction of ${ofPeak ? `peak bandwidth (${baselines.peakBandwidthGBs} GB/s)` : `copy bandwidth (${baselines.copyBandwidthGBs.toFixed(1)} GB/s; device peak unknown)`}`,
  );
  console.log(
    matrix(
      ofPeak ? "of peak" : "of copy",
      (r) => `${(100 * (ofPeak ? r.fraction_of_peak_bandwidth! : r.fraction_of_copy_bandwidth)).toFixed(0)}%`,
    ),
  );
  for (const s of sweep.skipped) {
    console.log(
      `skipped batch ${s.batch_size} x ${s.context_len}: needs ${(s.needed_bytes / 2 ** 30).toFixed(2)} GiB, ${(s.budget_bytes / 2 ** 30).toFixed(2)} GiB usable`,
    );
  }
  for (const f of sweep.failed) console.log(`failed batch ${f.batch_size} x ${f.context_len}: ${f.error}`);
}
