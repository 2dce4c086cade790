// What every benchmark prints and writes: percentile summaries, a progress line on stderr when it
// is a terminal, a plain table on stdout, and `--output-json` with every figure, the
// configuration, the device and the vllm-ts version.
import packageJson from "../../package.json";
import type { Backend } from "../backend/backend.ts";
import { percentile } from "./percentiles.ts";

export interface Summary {
  count: number;
  mean: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) return { count: 0, mean: 0, min: 0, p50: 0, p90: 0, p99: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  return {
    count: sorted.length,
    mean: sorted.reduce((sum, value) => sum + value, 0) / sorted.length,
    min: sorted[0]!,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1]!,
  };
}

/** "label: done/total" rewritten in place on stderr, only when a person is watching. */
export class Progress {
  private readonly enabled: boolean;
  private lastWrite = 0;

  constructor(
    private readonly label: string,
    private readonly total: number,
    show = true,
    private readonly unit = "requests finished",
  ) {
    this.enabled = show && process.stderr.isTTY === true;
  }

  update(done: number): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (now - this.lastWrite < 100 && done < this.total) return;
    this.lastWrite = now;
    process.stderr.write(`\r\x1b[K${this.label}: ${done}/${this.total} ${this.unit}`);
  }

  done(): void {
    if (this.enabled) process.stderr.write("\r\x1b[K");
  }
}

/** Rows of [label, value] (or [label, ...values] under a header) as aligned columns. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export const fixed = (value: number, digits = 2) => value.toFixed(digits);
export const percent = (ratio: number) => `${(100 * ratio).toFixed(1)}%`;

export function deviceOf(backend: Backend) {
  return { backend: backend.name, name: backend.deviceName, cpu_kernels: backend.cpuKernels };
}

export async function writeReport(
  path: string | undefined,
  report: {
    command: string;
    model: string;
    device: ReturnType<typeof deviceOf>;
    configuration: object;
    results: object;
  },
) {
  if (path === undefined) return;
  const document = { version: packageJson.version, ...report, date: new Date().toISOString() };
  await Bun.write(path, `${JSON.stringify(document, null, 2)}\n`);
}

const SPARK_LEVELS = "▁▂▃▄▅▆▇█";

/**
 * `values` in one line of block characters, at most `width` of them (each the mean of its share
 * of the values), scaled to `max` (default: the largest value).
 */
export function sparkline(values: readonly number[], width = 60, max = Math.max(0, ...values)): string {
  const columns = Math.min(width, values.length);
  let line = "";
  for (let column = 0; column < columns; column++) {
    const from = Math.floor((column * values.length) / columns);
    const to = Math.max(from + 1, Math.floor(((column + 1) * values.length) / columns));
    const mean = values.slice(from, to).reduce((sum, value) => sum + value, 0) / (to - from);
    const level = max > 0 ? Math.round((mean / max) * (SPARK_LEVELS.length - 1)) : 0;
    line += SPARK_LEVELS[Math.min(SPARK_LEVELS.length - 1, Math.max(0, level))];
  }
  return line;
}
