// `bench kernels --sweep matmul`: vt_matmul on a model's four linear layers at decode batch sizes
// (m = 1, 8, 64: bound by reading the weights) up to prefill sizes (m = 1024, 4096: bound by the
// tensor cores), in TFLOP/s (2 m n k FLOP). On CUDA each shape is timed on two paths: the
// library's default (cuBLAS when found) and our own kernels (a second backend opened with
// VT_DISABLE_CUBLAS=1, see cublas-toggle.ts). The weights rotate through cold copies as in a
// forward pass, where every layer's weights come from DRAM.
import type { Backend } from "../../backend/backend.ts";
import type { DType } from "../../backend/dtype.ts";
import type { WeightFormat } from "../../backend/weight-format.ts";
import { formatTable } from "../report.ts";
import { errorMessage, type FailedCase, type MemoryBaselines } from "./decode-attention-sweep.ts";
import { type KernelModel, type MatmulLayer, matmulLayers } from "./model-shapes.ts";
import { figure, round, type TimingOptions, timeMatmul } from "./timing.ts";
import { matmulFractionOfTorch, type TorchBaseline } from "./torch-baseline.ts";

/** "default": the library as opened (cuBLAS on a GPU when found); "own_kernels": with VT_DISABLE_CUBLAS=1. */
export type MatmulPath = "default" | "own_kernels";

export interface MatmulRow {
  layer: MatmulLayer["layer"];
  m: number;
  n: number;
  k: number;
  path: MatmulPath;
  act_dtype: DType;
  weight_dtype: WeightFormat;
  time_us: number;
  tflops: number;
  /** Weight bytes read per second: the bound for small m only. */
  weight_gbs: number;
  fraction_of_copy_bandwidth: number;
  fraction_of_peak_bandwidth?: number;
  /** Present with --torch-baseline: torch.matmul's time over ours (null: no such row in the file). */
  fraction_of_torch?: number | null;
}

export interface MatmulSetup {
  model: KernelModel;
  rowCounts: number[];
  weightDtype: WeightFormat;
  actDtype: DType;
  coldBytes: number;
  timing: TimingOptions;
}

export type FailedMatmul = { layer: MatmulLayer["layer"]; path: MatmulPath } & FailedCase;

export function runMatmulSweep(
  paths: { path: MatmulPath; backend: Backend }[],
  setup: MatmulSetup,
  baselines: MemoryBaselines,
  torch: TorchBaseline | null,
): { rows: MatmulRow[]; failed: FailedMatmul[] } {
  const rows: MatmulRow[] = [];
  const failed: FailedMatmul[] = [];
  for (const { path, backend } of paths) {
    for (const layer of matmulLayers(setup.model)) {
      const shape = { n: layer.n, k: layer.k, rowCounts: setup.rowCounts };
      let timed: ReturnType<typeof timeMatmul>;
      try {
        timed = timeMatmul(backend, setup.timing, shape, setup.weightDtype, setup.coldBytes, setup.actDtype);
      } catch (error) {
        failed.push({ layer: layer.layer, path, error: errorMessage(error) });
        continue;
      }
      for (const r of timed) {
        const row: MatmulRow = {
          layer: layer.layer,
          m: r.m,
          n: r.n,
          k: r.k,
          path,
          act_dtype: r.actDtype,
          weight_dtype: r.weightDtype,
          time_us: round(r.microseconds),
          tflops: round(r.gflops / 1000),
          weight_gbs: round(r.weightGBps),
          fraction_of_copy_bandwidth: round(r.weightGBps / baselines.copyBandwidthGBs),
          ...(baselines.peakBandwidthGBs !== null
            ? { fraction_of_peak_bandwidth: round(r.weightGBps / baselines.peakBandwidthGBs) }
            : {}),
        };
        if (torch) {
          const fraction = matmulFractionOfTorch(torch, { ...row, time_us: r.microseconds });
          row.fraction_of_torch = fraction === null ? null : round(fraction);
        }
        rows.push(row);
      }
    }
  }
  return { rows, failed };
}

/** One line per layer and m, a TFLOP/s column per path (and its fraction of torch.matmul). */
export function printMatmulSweep(
  { rows, failed }: { rows: MatmulRow[]; failed: FailedMatmul[] },
  paths: MatmulPath[],
  withTorch: boolean,
): void {
  console.log(`\nmatmul (m x n x k), TFLOP/s per path${withTorch ? ", and torch.matmul's time over ours" : ""}`);
  const header = [
    "layer",
    "m x n x k",
    ...paths.flatMap((p) => [`${p} TFLOP/s`, ...(withTorch ? [`${p} of torch`] : [])]),
  ];
  const keys = [...new Map(rows.map((r) => [`${r.layer} ${r.m}`, r])).values()];
  const body = keys.map((key) => [
    key.layer,
    `${key.m} x ${key.n} x ${key.k}`,
    ...paths.flatMap((p) => {
      const row = rows.find((r) => r.path === p && r.layer === key.layer && r.m === key.m);
      const tflops = row ? figure(row.tflops) : "-";
      if (!withTorch) return [tflops];
      return [tflops, row?.fraction_of_torch == null ? "-" : `${(100 * row.fraction_of_torch).toFixed(0)}%`];
    }),
  ]);
  console.log(formatTable([header, ...body]));
  for (const f of failed) console.log(`failed ${f.layer} on ${f.path}: ${f.error}`);
}
