// The parts of the JSON reports the GPU check reads, written by `vllm-ts bench ...`, e2e.ts and
// the Python baselines; the row types are those the benchmarks write.
import type { RunResult } from "../../src/bench/engine/offline.ts";
import type { DecodeAttentionRow } from "../../src/bench/kernels/decode-attention-sweep.ts";
import type { MatmulRow } from "../../src/bench/kernels/matmul-sweep.ts";
import type { MoeRow } from "../../src/bench/kernels/moe-sweep.ts";
import type { PrefillAttentionRow } from "../../src/bench/kernels/prefill-attention-sweep.ts";
import type { Summary } from "../../src/bench/report.ts";

interface Sweep<Row> {
  results: Row[];
  failed: unknown[];
}

/** `bench kernels --sweep ...`: the sections the sweeps asked for. */
export interface KernelsReport {
  device: { backend: string; name: string; peak_bandwidth_gbs: number | null };
  baselines?: { copy_bandwidth_gbs: number };
  decode_attention: Sweep<DecodeAttentionRow>;
  prefill_attention: Sweep<PrefillAttentionRow>;
  matmul: Sweep<MatmulRow> & { cublas_loadable: boolean };
  moe: Sweep<MoeRow>;
}

/** `bench latency`. */
export interface LatencyReport {
  results: { latency: Summary; timeToFirstTokenOfBatch: Summary };
}

/** `bench throughput`, and bench/hf_generate_baseline.py under the same field names. */
export interface ThroughputReport {
  results: Pick<RunResult, "numRequests" | "outputTokens" | "elapsedSeconds" | "outputTokensPerSecond">;
}

/** bench/gpu/e2e.ts. */
export interface E2eReport {
  passed: boolean;
  generate: { f32Matches: number; f32Total: number; bf16Matches: number; bf16Total: number; bf16Ran: boolean };
  serve: { matches: boolean; text?: string; expected?: string; error?: string };
  cases: unknown[];
}
