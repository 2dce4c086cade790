// gpu-report.md: the stages at a glance, then the figures as rows ready to paste into
// bench/README.md's GPU table (figure, target, this machine), then the decode-attention grid.
import type { TestFailure } from "./junit.ts";
import type { Figure, StageOutcome } from "./stage.ts";

export interface StageReport extends StageOutcome {
  name: string;
  title: string;
  seconds: number;
  limit_seconds: number;
}

interface ReportDocument {
  date: string;
  total_seconds: number;
  mode?: unknown;
  host?: unknown;
  stages: StageReport[];
}

/** Each row of the README's table: its label, target, and how to read it off the stages. */
const FIGURE_ROWS: { label: string; target: string; value: (f: (stage: string, key: string) => Figure) => string }[] = [
  {
    label: "decode attention, batch >= 32 x context >= 4096, fraction of peak bandwidth (min .. max)",
    target: ">= 0.80",
    value: (f) =>
      range(f("decode-attention", "fraction_of_peak_large_min"), f("decode-attention", "fraction_of_peak_large_max")),
  },
  {
    label: "decode attention, batch 256 x context 32768, fraction of peak",
    target: ">= 0.80",
    value: (f) => text(f("decode-attention", "fraction_of_peak_b256_c32768")),
  },
  {
    label: "decode attention, batch 1 x context 1024, KV GB/s",
    target: "(latency-bound; recorded)",
    value: (f) => text(f("decode-attention", "kv_read_gbs_b1_c1024")),
  },
  {
    label: "prefill attention vs torch SDPA, min over the grid (16 x 8192)",
    target: ">= 0.8",
    value: (f) =>
      `${text(f("prefill-matmul", "prefill_fraction_of_torch_min"))} (${text(f("prefill-matmul", "prefill_fraction_of_torch_16x8192"))})`,
  },
  {
    label: "matmul vs torch.matmul, default path, m >= 256 (min over layers)",
    target: ">= 0.9",
    value: (f) => text(f("prefill-matmul", "matmul_default_fraction_of_torch_min")),
  },
  {
    label: "matmul vs torch.matmul, own kernels, m >= 256 (min over layers)",
    target: "(recorded)",
    value: (f) => text(f("prefill-matmul", "matmul_own_fraction_of_torch_min")),
  },
  {
    label: "matmul, m = 1, weight bandwidth fraction of peak (own kernels)",
    target: "(recorded)",
    value: (f) =>
      range(
        f("prefill-matmul", "matmul_own_m1_fraction_of_peak_min"),
        f("prefill-matmul", "matmul_own_m1_fraction_of_peak_max"),
      ),
  },
  {
    label:
      "Q4_K matmul, m = 1 (Llama-3.1-8B layers), weight bandwidth fraction of peak (min .. max; the four layers one after the other)",
    target: ">= 0.70",
    value: (f) =>
      `${range(f("quantized-matmul", "q4k_m1_fraction_of_peak_min"), f("quantized-matmul", "q4k_m1_fraction_of_peak_max"))}; ${text(f("quantized-matmul", "q4k_m1_fraction_of_peak_layers"))}`,
  },
  {
    label: "MoE matmul, 1 token (Qwen3-30B-A3B, Mixtral-8x7B experts), used experts' weight bandwidth fraction of peak",
    target: "(recorded)",
    value: (f) => range(f("moe-matmul", "moe_t1_fraction_of_peak_min"), f("moe-matmul", "moe_t1_fraction_of_peak_max")),
  },
  {
    label:
      "MoE matmul with Q4_K experts, 1 token, used experts' weight bandwidth fraction of peak; TFLOP/s at 256 tokens",
    target: "(recorded)",
    value: (f) =>
      `${range(f("moe-matmul-q4k", "moe_t1_fraction_of_peak_min"), f("moe-matmul-q4k", "moe_t1_fraction_of_peak_max"))}; ${text(f("moe-matmul-q4k", "moe_tflops_max"))}`,
  },
  {
    label: "end to end, output tokens/s: vllm-ts / HF generate",
    target: "14-24x",
    value: (f) =>
      `${text(f("hf-generate", "vllm_ts_over_hf"))} (${text(f("throughput", "output_tokens_per_second"))} / ${text(f("hf-generate", "output_tokens_per_second"))})`,
  },
  {
    label: "CUDA graphs: decode latency per token, eager / graphs, batch 1 and 32",
    target: "(recorded)",
    value: (f) => `${text(f("graphs", "b1_eager_over_graphs"))}, ${text(f("graphs", "b32_eager_over_graphs"))}`,
  },
  {
    label: "async scheduling: decode latency per token, in turns / async, Qwen3-0.6B shape, batch 1 and 64",
    target: "(recorded)",
    value: (f) =>
      `${text(f("async-scheduling", "b1_in_turns_over_async"))}, ${text(f("async-scheduling", "b64_in_turns_over_async"))}`,
  },
  {
    label: "nano-vllm's workload (Qwen3-0.6B shape), output tokens/s",
    target: "(recorded)",
    value: (f) => text(f("nano-vllm", "output_tokens_per_second")),
  },
];

function text(value: Figure): string {
  return value === null || value === undefined ? "-" : String(value);
}

function range(low: Figure, high: Figure): string {
  return low === null && high === null ? "-" : `${text(low)} .. ${text(high)}`;
}

function cell(value: string): string {
  return value.replaceAll("|", "\\|").replaceAll("\n", " ");
}

function decodeGrid(stage: StageReport | undefined): string[] {
  const figures = stage?.figures ?? {};
  const cases = Object.keys(figures)
    .map((key) => /^b(\d+)_c(\d+)$/.exec(key))
    .filter((m) => m !== null);
  if (cases.length === 0) return [];
  const batches = [...new Set(cases.map((m) => Number(m[1])))].sort((a, b) => a - b);
  const contexts = [...new Set(cases.map((m) => Number(m[2])))].sort((a, b) => a - b);
  return [
    "",
    "Decode attention, fraction of peak bandwidth (of copy bandwidth when the peak is unknown):",
    "",
    `| batch \\ context | ${contexts.join(" | ")} |`,
    `| --- |${contexts.map(() => " --- |").join("")}`,
    ...batches.map((b) => `| ${b} | ${contexts.map((c) => text(figures[`b${b}_c${c}`] ?? null)).join(" | ")} |`),
  ];
}

function failureLines(stages: StageReport[]): string[] {
  const failures: (TestFailure & { stage: string })[] = stages.flatMap((s) =>
    (s.tests?.failures ?? []).map((f) => ({ ...f, stage: s.name })),
  );
  if (failures.length === 0) return [];
  return [
    "",
    "Failed tests:",
    "",
    ...failures
      .slice(0, 40)
      .map((f) => `- ${f.stage}: ${f.file}: ${f.test}: ${cell(f.message.split("\n").slice(0, 3).join(" "))}`),
  ];
}

export function renderMarkdown(report: ReportDocument): string {
  const byName = new Map(report.stages.map((s) => [s.name, s]));
  const figure = (stage: string, key: string): Figure => byName.get(stage)?.figures?.[key] ?? null;
  return [
    `# GPU check: ${text(figure("device", "device_name"))}`,
    "",
    `${report.date}; ${String(report.mode ?? "")}; ${report.total_seconds} s in all.`,
    "",
    "| stage | status | seconds (limit) | result |",
    "| --- | --- | --- | --- |",
    ...report.stages.map((s) => `| ${s.name} | ${s.status} | ${s.seconds} (${s.limit_seconds}) | ${cell(s.summary)} |`),
    ...failureLines(report.stages),
    "",
    "| figure | target | this machine |",
    "| --- | --- | --- |",
    ...FIGURE_ROWS.map((row) => `| ${row.label} | ${row.target} | ${row.value(figure)} |`),
    ...decodeGrid(byName.get("decode-attention")),
    "",
  ].join("\n");
}
