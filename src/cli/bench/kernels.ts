// `vllm-ts bench kernels`: the native ops on the active device, each against a baseline of the
// same run (device copy bandwidth for memory-bound ops, the best matmul rate for matmuls), since
// the device's peak is not known from TypeScript.
import { writeFileSync } from "node:fs";
import { defineCommand } from "citty";
import packageJson from "../../../package.json";
import { Backend } from "../../backend/backend.ts";
import { choice, integer, number } from "../engine-args.ts";
import { logger } from "../logger.ts";
import { copyBandwidthGBs, timeElementwise, timeMatmul, timePagedAttentionDecode, type TimingOptions } from "./kernel-timing.ts";

// Qwen2.5-0.5B's gate_up and down projections: a decode step (m = 1, 8), a batch, a prefill.
const MATMUL_SHAPES = [
  { n: 9728, k: 896, rowCounts: [1, 8, 64, 512] },
  { n: 896, k: 4864, rowCounts: [1, 8, 64, 512] },
];
const ATTENTION_SHAPE = { numSeqs: 16, seqLen: 1024, numQHeads: 14, numKvHeads: 2, headDim: 64, blockSize: 16 };
// Large enough to stream from DRAM rather than the last-level cache.
const ELEMENTWISE_TOKENS = 2048;
const ELEMENTWISE_HIDDEN = 4864;

const round = (value: number, digits = 3) => Number(value.toFixed(digits));

export default defineCommand({
  meta: { name: "kernels", description: "Microbenchmark the native ops (matmul, paged attention, rms_norm, silu_and_mul) on the active device" },
  args: {
    device: { type: "string", default: "auto", description: "auto | cpu | cuda" },
    threads: { type: "string", default: "0", description: "CPU threads (0 = all cores)" },
    "min-time-ms": { type: "string", default: "150", description: "Repeat each measurement for at least this long (the fastest call counts)" },
    repeats: { type: "string", default: "3", description: "Fewest timed calls per measurement, after a warm-up call" },
    "cold-mib": { type: "string", default: "256", description: "Matmul weights rotate through this many MiB of copies, so that they come from DRAM" },
    "copy-mib": { type: "string", default: "512", description: "Size of the device copy that measures the bandwidth baseline" },
    "output-json": { type: "string", description: "Write every figure to this JSON file" },
  },
  async run({ args }) {
    try {
      const device = choice("device", args.device, ["auto", "cpu", "cuda"] as const);
      const timing: TimingOptions = { minSeconds: number("min-time-ms", args["min-time-ms"], 0) / 1000, minRepeats: integer("repeats", args.repeats, 1) };
      const coldBytes = number("cold-mib", args["cold-mib"], 0) * 2 ** 20;
      const copyBytes = Math.floor(number("copy-mib", args["copy-mib"], 1) * 2 ** 20);
      const backend = await Backend.open({ device, numThreads: integer("threads", args.threads, 0) });
      try {
        logger.info(`bench kernels on ${backend.name} (${backend.deviceName})`);
        const copyGBps = copyBandwidthGBs(backend, timing, copyBytes);
        const matmuls = MATMUL_SHAPES.flatMap((shape) => timeMatmul(backend, timing, shape, "bf16", coldBytes));
        const bestGflops = Math.max(...matmuls.map((r) => r.gflops));
        const attention = timePagedAttentionDecode(backend, timing, ATTENTION_SHAPE, "bf16");
        const elementwise = (["rms_norm", "silu_and_mul"] as const).map((op) => ({
          op,
          ...timeElementwise(backend, timing, op, ELEMENTWISE_TOKENS, ELEMENTWISE_HIDDEN, "f32"),
        }));

        const report = {
          version: packageJson.version,
          device: { backend: backend.name, name: backend.deviceName },
          config: { min_time_ms: timing.minSeconds * 1000, repeats: timing.minRepeats, cold_mib: coldBytes / 2 ** 20, copy_mib: copyBytes / 2 ** 20 },
          baselines: { copy_bandwidth_gbs: round(copyGBps), best_matmul_gflops: round(bestGflops) },
          matmul: matmuls.map((r) => ({
            m: r.m, n: r.n, k: r.k, act_dtype: "f32", weight_dtype: r.weightDtype, time_us: round(r.microseconds),
            gflops: round(r.gflops), fraction_of_best_matmul: round(r.gflops / bestGflops),
            // Only a decode matmul (m = 1) is bound by reading its weights.
            ...(r.m === 1 ? { weight_gbs: round(r.weightGBps), fraction_of_copy_bandwidth: round(r.weightGBps / copyGBps) } : {}),
          })),
          paged_attention_decode: {
            num_seqs: ATTENTION_SHAPE.numSeqs, seq_len: ATTENTION_SHAPE.seqLen, num_q_heads: ATTENTION_SHAPE.numQHeads,
            num_kv_heads: ATTENTION_SHAPE.numKvHeads, head_dim: ATTENTION_SHAPE.headDim, block_size: ATTENTION_SHAPE.blockSize,
            cache_dtype: "bf16", time_us: round(attention.microseconds), kv_read_gbs: round(attention.kvGBps),
            fraction_of_copy_bandwidth: round(attention.kvGBps / copyGBps),
          },
          ...Object.fromEntries(elementwise.map((e) => [e.op, {
            num_tokens: ELEMENTWISE_TOKENS, hidden_size: ELEMENTWISE_HIDDEN, act_dtype: "f32", time_us: round(e.microseconds),
            gbs: round(e.GBps), fraction_of_copy_bandwidth: round(e.GBps / copyGBps),
          }])),
        };

        const percent = (fraction: number) => `${(100 * fraction).toFixed(0)}%`.padStart(6);
        console.log(`device ${backend.name} (${backend.deviceName}); copy bandwidth ${copyGBps.toFixed(1)} GB/s (read + write); best matmul ${bestGflops.toFixed(1)} GFLOP/s`);
        console.log("op                        shape                   time us    rate            of baseline");
        for (const r of report.matmul) {
          console.log(`${"matmul bf16".padEnd(26)}${`${r.m} x ${r.n} x ${r.k}`.padEnd(22)}${r.time_us.toFixed(0).padStart(9)}    ${`${r.gflops.toFixed(1)} GFLOP/s`.padEnd(16)}${percent(r.fraction_of_best_matmul)}`);
          if (r.weight_gbs !== undefined) console.log(`${"  weights read".padEnd(26)}${"".padEnd(22)}${"".padStart(9)}    ${`${r.weight_gbs.toFixed(1)} GB/s`.padEnd(16)}${percent(r.fraction_of_copy_bandwidth!)}`);
        }
        const pa = report.paged_attention_decode;
        console.log(`${"paged_attention decode".padEnd(26)}${`${pa.num_seqs} seqs x ${pa.seq_len} tok`.padEnd(22)}${pa.time_us.toFixed(0).padStart(9)}    ${`${pa.kv_read_gbs.toFixed(1)} GB/s KV`.padEnd(16)}${percent(pa.fraction_of_copy_bandwidth)}`);
        for (const e of elementwise) {
          console.log(`${e.op.padEnd(26)}${`${ELEMENTWISE_TOKENS} x ${ELEMENTWISE_HIDDEN}`.padEnd(22)}${e.microseconds.toFixed(0).padStart(9)}    ${`${e.GBps.toFixed(1)} GB/s`.padEnd(16)}${percent(e.GBps / copyGBps)}`);
        }
        if (args["output-json"]) writeFileSync(args["output-json"], `${JSON.stringify(report, null, 2)}\n`);
      } finally {
        backend.close();
      }
    } catch (error) {
      logger.error(error instanceof Error ? error.message : String(error));
      process.exit(1);
    }
  },
});
