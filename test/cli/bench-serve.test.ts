// `dist/vllm-ts bench serve` against a real server process and against one it starts itself, and
// `bench kernels`: the JSON reports carry vLLM's metric names with figures that make sense.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type ServerProcess, startServer, writeServerTestModel } from "../helpers/server-process.ts";

const EXECUTABLE = resolve(import.meta.dir, "../../dist/vllm-ts");
const LOAD = ["--num-prompts", "8", "--input-len", "16", "--output-len", "8"];

let modelDir: string;
let server: ServerProcess;
const folder = mkdtempSync(join(tmpdir(), "vllm-ts-bench-"));

beforeAll(async () => {
  modelDir = await writeServerTestModel();
  server = await startServer(modelDir, ["--served-model-name", "tiny-qwen"]);
});

afterAll(async () => {
  await server?.stop();
});

/** A report as the benchmark wrote it: JSON read by key, as a user's script would. */
// biome-ignore lint/suspicious/noExplicitAny: the JSON documents under test.
type JsonReport = Record<string, any>;

function bench(args: string[], name: string): { code: number; stdout: string; stderr: string; report: JsonReport } {
  const output = join(folder, `${name}.json`);
  const result = Bun.spawnSync([EXECUTABLE, "bench", ...args, "--output-json", output], { stdin: "ignore" });
  const stderr = result.stderr.toString();
  if (result.exitCode !== 0) throw new Error(`bench ${args[0]} exited with ${result.exitCode}:\n${stderr}`);
  return {
    code: result.exitCode,
    stdout: result.stdout.toString(),
    stderr,
    report: JSON.parse(readFileSync(output, "utf8")),
  };
}

function expectSaneJsonReport(report: JsonReport): void {
  expect(report.completed).toBe(8);
  expect(report.failed).toBe(0);
  expect(report.total_input_tokens).toBe(8 * 16);
  expect(report.total_output_tokens).toBe(8 * 8);
  for (const name of ["request_throughput", "output_throughput", "total_token_throughput"])
    expect(report[name]).toBeGreaterThan(0);
  for (const name of ["ttft", "tpot", "itl", "e2el"]) {
    expect(report[`mean_${name}_ms`]).toBeGreaterThan(0);
    expect(report[`median_${name}_ms`]).toBeLessThanOrEqual(report[`p90_${name}_ms`]);
    expect(report[`p90_${name}_ms`]).toBeLessThanOrEqual(report[`p99_${name}_ms`]);
  }
  expect(report.mean_ttft_ms).toBeLessThanOrEqual(report.mean_e2el_ms);
  expect(report.p99_ttft_ms).toBeLessThanOrEqual(report.p99_e2el_ms);
  report.ttfts.forEach((ttft: number, i: number) => {
    expect(ttft).toBeLessThanOrEqual(report.e2els[i]);
  });
  expect(report.version).toEqual(expect.any(String));
  expect(report.config).toMatchObject({ num_prompts: 8, input_len: 16, output_len: 8 });
}

describe("dist/vllm-ts bench serve", () => {
  test("against a running server: every request completes and the latencies are ordered", () => {
    const { stdout, report } = bench(
      ["serve", "--url", server.url, "--model", "tiny-qwen", ...LOAD, "--goodput", "ttft:60000", "e2el:60000"],
      "remote",
    );
    expectSaneJsonReport(report);
    expect(report.device).toBe("remote");
    expect(report.config.model).toBe("tiny-qwen");
    // Objectives every request meets: goodput equals throughput.
    expect(report.request_goodput).toBeCloseTo(report.request_throughput, 6);
    expect(stdout).toContain("Serving Benchmark Result");
    expect(stdout).toMatch(/P99 TTFT \(ms\):\s+\d/);
  });

  test("Poisson arrivals and a concurrency limit still complete every request", () => {
    const { report } = bench(
      ["serve", "--url", server.url, ...LOAD, "--request-rate", "50", "--max-concurrency", "2", "--seed", "3"],
      "poisson",
    );
    expectSaneJsonReport(report);
    expect(report.config).toMatchObject({ request_rate: 50, max_concurrency: 2, seed: 3 });
    // A 50 req/s Poisson process takes some time to send 8 requests.
    expect(report.duration).toBeGreaterThan(0.02);
  });

  test("without --url it starts serve itself and names the device from its log", () => {
    const { report } = bench(
      ["serve", modelDir, "--device", "cpu", "--kv-cache-memory", "16MiB", ...LOAD],
      "self-started",
    );
    expectSaneJsonReport(report);
    expect(report.device).toMatch(/^cpu \(/);
  });
});

describe("dist/vllm-ts bench kernels", () => {
  test("reports positive rates and fractions of the run's own baselines", () => {
    const { report } = bench(
      ["kernels", "--device", "cpu", "--min-time-ms", "0", "--repeats", "1", "--cold-mib", "0", "--copy-mib", "16"],
      "kernels",
    );
    expect(report.baselines.copy_bandwidth_gbs).toBeGreaterThan(0);
    expect(report.baselines.best_matmul_gflops).toBeGreaterThan(0);
    expect(report.matmul.length).toBeGreaterThan(0);
    for (const row of report.matmul) {
      expect(row.gflops).toBeGreaterThan(0);
      expect(row.fraction_of_best_matmul).toBeGreaterThan(0);
      expect(row.fraction_of_best_matmul).toBeLessThanOrEqual(1);
      if (row.m === 1) expect(row.weight_gbs).toBeGreaterThan(0);
    }
    expect(report.paged_attention_decode.kv_read_gbs).toBeGreaterThan(0);
    expect(report.rms_norm.gbs).toBeGreaterThan(0);
    expect(report.silu_and_mul.gbs).toBeGreaterThan(0);
    expect(report.device.backend).toBe("cpu");
  });
});
