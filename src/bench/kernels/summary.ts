// `bench kernels` without --sweep: one quick look at every kind of native op on the active
// device (matmul on Qwen2.5-0.5B's MLP shapes, decode paged attention, rms_norm, silu_and_mul),
// each against a baseline of the same run: the copy bandwidth for memory-bound ops, the best
// matmul rate for matmuls. Activations are in the dtype the model computes in on this backend.
import type { Backend } from "../../backend/backend.ts";
import type { DType } from "../../backend/dtype.ts";
import { type PagedAttentionCase, planPagedAttention, timePagedAttention } from "./paged-attention-timing.ts";
import { round, type TimingOptions, timeElementwise, timeMatmul } from "./timing.ts";

// Qwen2.5-0.5B's gate_up and down projections: a decode step (m = 1, 8), a batch, a prefill.
const MATMUL_SHAPES = [
  { n: 9728, k: 896, rowCounts: [1, 8, 64, 512] },
  { n: 896, k: 4864, rowCounts: [1, 8, 64, 512] },
];
const ATTENTION_SHAPE = { numSeqs: 16, seqLen: 1024, numQHeads: 14, numKvHeads: 2, headDim: 64, blockSize: 16 };
// Large enough to stream from DRAM rather than the last-level cache.
const ELEMENTWISE_TOKENS = 2048;
const ELEMENTWISE_HIDDEN = 4864;

export function runKernelSummary(
  backend: Backend,
  timing: TimingOptions,
  actDtype: DType,
  coldBytes: number,
  copyGBps: number,
) {
  const weightDtype: DType = "bf16";
  const matmuls = MATMUL_SHAPES.flatMap((shape) =>
    timeMatmul(backend, timing, shape, weightDtype, coldBytes, actDtype),
  );
  const bestGflops = Math.max(...matmuls.map((r) => r.gflops));
  const attentionCase: PagedAttentionCase = { ...ATTENTION_SHAPE, queryLen: 1, actDtype, cacheDtype: "bf16" };
  const plan = planPagedAttention(attentionCase, coldBytes, Infinity)!;
  const attentionSeconds = timePagedAttention(backend, timing, attentionCase, plan.copies);
  const kvGBps = plan.kvBytes / attentionSeconds / 1e9;
  const elementwise = (["rms_norm", "silu_and_mul"] as const).map((op) => ({
    op,
    ...timeElementwise(backend, timing, op, ELEMENTWISE_TOKENS, ELEMENTWISE_HIDDEN, actDtype),
  }));

  const report = {
    baselines: { copy_bandwidth_gbs: round(copyGBps), best_matmul_gflops: round(bestGflops) },
    matmul: matmuls.map((r) => ({
      m: r.m,
      n: r.n,
      k: r.k,
      act_dtype: r.actDtype,
      weight_dtype: r.weightDtype,
      time_us: round(r.microseconds),
      gflops: round(r.gflops),
      fraction_of_best_matmul: round(r.gflops / bestGflops),
      // Only a decode matmul (m = 1) is bound by reading its weights.
      ...(r.m === 1
        ? { weight_gbs: round(r.weightGBps), fraction_of_copy_bandwidth: round(r.weightGBps / copyGBps) }
        : {}),
    })),
    paged_attention_decode: {
      num_seqs: ATTENTION_SHAPE.numSeqs,
      seq_len: ATTENTION_SHAPE.seqLen,
      num_q_heads: ATTENTION_SHAPE.numQHeads,
      num_kv_heads: ATTENTION_SHAPE.numKvHeads,
      head_dim: ATTENTION_SHAPE.headDim,
      block_size: ATTENTION_SHAPE.blockSize,
      act_dtype: actDtype,
      cache_dtype: "bf16",
      time_us: round(attentionSeconds * 1e6),
      kv_read_gbs: round(kvGBps),
      fraction_of_copy_bandwidth: round(kvGBps / copyGBps),
    },
    ...Object.fromEntries(
      elementwise.map((e) => [
        e.op,
        {
          num_tokens: ELEMENTWISE_TOKENS,
          hidden_size: ELEMENTWISE_HIDDEN,
          act_dtype: actDtype,
          time_us: round(e.microseconds),
          gbs: round(e.GBps),
          fraction_of_copy_bandwidth: round(e.GBps / copyGBps),
        },
      ]),
    ),
  };

  const percent = (fraction: number) => `${(100 * fraction).toFixed(0)}%`.padStart(6);
  console.log(`best matmul ${bestGflops.toFixed(1)} GFLOP/s`);
  console.log("op                        shape                   time us    rate            of baseline");
  for (const r of report.matmul) {
    console.log(
      `${`matmul ${r.act_dtype} x ${r.weight_dtype}`.padEnd(26)}${`${r.m} x ${r.n} x ${r.k}`.padEnd(22)}${r.time_us.toFixed(0).padStart(9)}    ${`${r.gflops.toFixed(1)} GFLOP/s`.padEnd(16)}${percent(r.fraction_of_best_matmul)}`,
    );
    if (r.weight_gbs !== undefined)
      console.log(
        `${"  weights read".padEnd(26)}${"".padEnd(22)}${"".padStart(9)}    ${`${r.weight_gbs.toFixed(1)} GB/s`.padEnd(16)}${percent(r.fraction_of_copy_bandwidth!)}`,
      );
  }
  const pa = report.paged_attention_decode;
  console.log(
    `${"paged_attention decode".padEnd(26)}${`${pa.num_seqs} seqs x ${pa.seq_len} tok`.padEnd(22)}${pa.time_us.toFixed(0).padStart(9)}    ${`${pa.kv_read_gbs.toFixed(1)} GB/s KV`.padEnd(16)}${percent(pa.fraction_of_copy_bandwidth)}`,
  );
  for (const e of elementwise) {
    console.log(
      `${e.op.padEnd(26)}${`${ELEMENTWISE_TOKENS} x ${ELEMENTWISE_HIDDEN}`.padEnd(22)}${e.microseconds.toFixed(0).padStart(9)}    ${`${e.GBps.toFixed(1)} GB/s`.padEnd(16)}${percent(e.GBps / copyGBps)}`,
    );
  }
  return report;
}
