// `bench kernels --sweep prefill-attention`: paged attention for whole prompts, each sequence's
// prompt one chunk of `query_len` tokens attending causally to itself (the first chunk of a
// chunked prefill; later chunks of a long prompt see more keys than queries). Bound by the two
// matrix products per head, so the figure is TFLOP/s, counted as FlashAttention's benchmarks and
// bench/torch_baseline.py count it:
//   flops = 4 * num_seqs * num_q_heads * head_dim * query_len^2 / 2
// (QK^T and PV, 2 FLOP per multiply-add each, over query_len x query_len scores, halved because a
// causal mask leaves about half of them). The exact count of attended pairs is
// query_len * (query_len + 1) / 2, which differs by 1/query_len.
import type { Backend } from "../../backend/backend.ts";
import { formatTable } from "../report.ts";
import { type AttentionSweepSetup, errorMessage, type FailedCase } from "./decode-attention-sweep.ts";
import { type PagedAttentionCase, planPagedAttention, timePagedAttention } from "./paged-attention-timing.ts";
import { figure, round } from "./timing.ts";
import { prefillFractionOfTorch, type TorchBaseline } from "./torch-baseline.ts";

export interface PrefillAttentionRow {
  num_seqs: number;
  query_len: number;
  /** Cached tokens per sequence (= query_len: the prompt attends to itself). */
  context_len: number;
  num_q_heads: number;
  num_kv_heads: number;
  head_dim: number;
  causal: true;
  time_us: number;
  flops: number;
  tflops: number;
  /** Present with --torch-baseline: torch SDPA's time over ours for the same shape (null: no such row). */
  fraction_of_torch?: number | null;
}

export interface PrefillAttentionSweep {
  flop_count: string;
  results: PrefillAttentionRow[];
  skipped: { num_seqs: number; query_len: number; needed_bytes: number; budget_bytes: number; reason: string }[];
  failed: ({ num_seqs: number; query_len: number } & FailedCase)[];
}

export const PREFILL_FLOP_COUNT = "4 * num_seqs * num_q_heads * head_dim * query_len^2 / 2 (QK^T and PV, causal half)";

export function prefillFlops(numSeqs: number, queryLen: number, numQHeads: number, headDim: number): number {
  return (4 * numSeqs * numQHeads * headDim * queryLen * queryLen) / 2;
}

export function runPrefillAttentionSweep(
  backend: Backend,
  setup: AttentionSweepSetup,
  grid: { numSeqs: number[]; queryLens: number[] },
  torch: TorchBaseline | null,
): PrefillAttentionSweep {
  const { model } = setup;
  const sweep: PrefillAttentionSweep = { flop_count: PREFILL_FLOP_COUNT, results: [], skipped: [], failed: [] };
  for (const numSeqs of grid.numSeqs) {
    for (const queryLen of grid.queryLens) {
      const c: PagedAttentionCase = {
        numSeqs,
        queryLen,
        seqLen: queryLen,
        numQHeads: model.numQHeads,
        numKvHeads: model.numKvHeads,
        headDim: model.headDim,
        blockSize: setup.blockSize,
        actDtype: setup.actDtype,
        cacheDtype: setup.cacheDtype,
      };
      const budget = Math.floor(backend.memoryInfo().freeBytes * setup.memoryFraction);
      // Compute-bound: one copy of the cache is enough.
      const plan = planPagedAttention(c, 0, budget);
      if (plan === null) {
        const needed = planPagedAttention(c, 0, Infinity)!.deviceBytes;
        sweep.skipped.push({
          num_seqs: numSeqs,
          query_len: queryLen,
          needed_bytes: needed,
          budget_bytes: budget,
          reason: "does not fit in free memory",
        });
        continue;
      }
      let seconds: number;
      try {
        seconds = timePagedAttention(backend, setup.timing, c, 1);
      } catch (error) {
        sweep.failed.push({ num_seqs: numSeqs, query_len: queryLen, error: errorMessage(error) });
        continue;
      }
      const flops = prefillFlops(numSeqs, queryLen, model.numQHeads, model.headDim);
      const row: PrefillAttentionRow = {
        num_seqs: numSeqs,
        query_len: queryLen,
        context_len: queryLen,
        num_q_heads: model.numQHeads,
        num_kv_heads: model.numKvHeads,
        head_dim: model.headDim,
        causal: true,
        time_us: round(seconds * 1e6),
        flops,
        tflops: round(flops / seconds / 1e12),
      };
      if (torch) {
        const fraction = prefillFractionOfTorch(torch, { ...row, time_us: seconds * 1e6 });
        row.fraction_of_torch = fraction === null ? null : round(fraction);
      }
      sweep.results.push(row);
    }
  }
  return sweep;
}

export function printPrefillAttentionSweep(sweep: PrefillAttentionSweep, withTorch: boolean): void {
  console.log(`\nprefill paged attention (causal, whole prompt as one chunk): ${sweep.flop_count}`);
  const header = ["seqs x query tokens", "time us", "TFLOP/s", ...(withTorch ? ["of torch SDPA"] : [])];
  const rows = sweep.results.map((r) => [
    `${r.num_seqs} x ${r.query_len}`,
    figure(r.time_us),
    figure(r.tflops),
    ...(withTorch ? [r.fraction_of_torch == null ? "-" : `${(100 * r.fraction_of_torch).toFixed(0)}%`] : []),
  ]);
  console.log(formatTable([header, ...rows]));
  for (const s of sweep.skipped)
    console.log(`skipped ${s.num_seqs} x ${s.query_len}: needs ${(s.needed_bytes / 2 ** 30).toFixed(2)} GiB`);
  for (const f of sweep.failed) console.log(`failed ${f.num_seqs} x ${f.query_len}: ${f.error}`);
}
