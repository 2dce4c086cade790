// vt_matmul on the linear layers of real small models (Qwen2.5-0.5B, SmolLM2-135M) at decode
// batch sizes and a 512-token prefill, with bf16 and f32 weights: GFLOP/s against the f32 FMA
// peak, and weight-read GB/s against the copy bandwidth where m is small enough to be
// memory-bound. Weights rotate through enough copies to overflow the caches, as in a forward
// pass where every layer's weights come from DRAM.
//   bun bench/matmul.ts [--threads N] [--peak-gflops P] [--bandwidth-gbs B]
// --peak-gflops: the machine's f32 FMA peak (threads x FLOP/cycle x clock, or an FMA-loop
// measurement); without it, fractions are of the best rate this run reaches. bf16 weights on a
// CPU with AVX512-BF16 multiply pairs of bf16 from m = 32, at up to twice that peak.
// --bandwidth-gbs: DRAM read bandwidth; without it, a device-to-device copy of 512 MiB measures
// read + write bandwidth in the same run.
import { parseArgs } from "node:util";
import { Backend } from "../src/backend/backend.ts";
import type { DType } from "../src/backend/dtype.ts";
import { copyBandwidthGBs, type MatmulResult, timeMatmul } from "../src/bench/kernels/timing.ts";
import { loadModelConfig } from "../src/model/config.ts";

const { values: options } = parseArgs({
  options: {
    threads: { type: "string", default: "0" },
    "peak-gflops": { type: "string" },
    "bandwidth-gbs": { type: "string" },
  },
});

const models = ["bench/models/qwen2.5-0.5b", "bench/models/smollm2-135m"];
const rowCounts = [1, 8, 32, 64, 512];
const weightDtypes: DType[] = ["bf16", "f32"];
// Rotating through this many bytes of weight copies defeats any last-level cache.
const coldBytes = 256 * 2 ** 20;
const timing = { minSeconds: 0.15, minRepeats: 3 };

interface Layer {
  model: string;
  name: string;
  n: number;
  k: number;
  /** The LM head runs only on the rows that are sampled, never on a whole prefill. */
  maxRows: number;
}

async function layersOf(modelDir: string): Promise<Layer[]> {
  const c = await loadModelConfig(modelDir);
  const model = modelDir.split("/").pop()!;
  const qDim = c.numHeads * c.headDim;
  return [
    { model, name: "qkv", n: qDim + 2 * c.numKvHeads * c.headDim, k: c.hiddenSize, maxRows: Infinity },
    { model, name: "o", n: c.hiddenSize, k: qDim, maxRows: Infinity },
    { model, name: "gate_up", n: 2 * c.intermediateSize, k: c.hiddenSize, maxRows: Infinity },
    { model, name: "down", n: c.hiddenSize, k: c.intermediateSize, maxRows: Infinity },
    { model, name: "lm_head", n: c.vocabSize, k: c.hiddenSize, maxRows: 64 },
  ];
}

const backend = await Backend.open({ device: "cpu", numThreads: Number(options.threads) });

const copyBandwidth = options["bandwidth-gbs"]
  ? Number(options["bandwidth-gbs"])
  : copyBandwidthGBs(backend, timing, 512 * 2 ** 20);

const rows: (MatmulResult & { layer: Layer })[] = [];
for (const layer of (await Promise.all(models.map(layersOf))).flat()) {
  for (const dtype of weightDtypes) {
    const shape = { n: layer.n, k: layer.k, rowCounts: rowCounts.filter((m) => m <= layer.maxRows) };
    for (const result of timeMatmul(backend, timing, shape, dtype, coldBytes)) rows.push({ ...result, layer });
  }
}

const peak = options["peak-gflops"] ? Number(options["peak-gflops"]) : Math.max(...rows.map((r) => r.gflops));
const peakSource = options["peak-gflops"]
  ? "--peak-gflops"
  : "best rate of this run; pass --peak-gflops for the FMA peak";
const bandwidthSource = options["bandwidth-gbs"] ? "--bandwidth-gbs" : "512 MiB device copy, read + write";
console.log(`vt_matmul on ${backend.name} (${backend.deviceName}), f32 activations, cold weights`);
console.log(
  `peak ${peak.toFixed(1)} GFLOP/s (${peakSource}); bandwidth ${copyBandwidth.toFixed(1)} GB/s (${bandwidthSource})`,
);
console.log("model         layer      n x k          dtype     m    time us   GFLOP/s  of peak  weights GB/s  of bw");
for (const r of rows) {
  // From m ~ 16 a matmul is compute-bound: its weight bandwidth no longer says anything.
  const memoryBound = r.m <= 8;
  console.log(
    [
      r.layer.model.padEnd(13),
      r.layer.name.padEnd(10),
      `${r.layer.n} x ${r.layer.k}`.padEnd(14),
      r.weightDtype.padEnd(5),
      String(r.m).padStart(5),
      r.microseconds.toFixed(0).padStart(10),
      r.gflops.toFixed(1).padStart(9),
      `${((100 * r.gflops) / peak).toFixed(0)}%`.padStart(8),
      (memoryBound ? r.weightGBps.toFixed(1) : "").padStart(13),
      (memoryBound ? `${((100 * r.weightGBps) / copyBandwidth).toFixed(0)}%` : "").padStart(6),
    ].join(" "),
  );
}
backend.close();
