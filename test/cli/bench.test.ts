// `dist/vllm-ts bench throughput|latency|compare` as users run them, on the demo model with tiny
// workloads: each finishes, prints its table, and writes a JSON report whose figures are sane.

import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { RunResult } from "../../src/bench/engine/offline.ts";

const EXECUTABLE = resolve(import.meta.dir, "../../dist/vllm-ts");
const SLOW = 30_000;
const TINY = ["--device", "cpu", "--kv-cache-memory", "32MiB", "--max-model-len", "256"];

let dir: string;

beforeAll(() => {
  if (!existsSync(EXECUTABLE)) throw new Error(`${EXECUTABLE} is missing: run make first`);
  dir = mkdtempSync(join(tmpdir(), "vllm-ts-bench-"));
});

/** Runs `vllm-ts bench ...args --output-json FILE`; returns stdout and the parsed report. */
function bench(name: string, args: string[]) {
  const file = join(dir, `${name}.json`);
  const result = Bun.spawnSync([EXECUTABLE, "bench", name, ...args, "--output-json", file], {
    stdout: "pipe",
    stderr: "pipe",
  });
  expect(result.stderr.toString()).toBe("");
  expect(result.exitCode).toBe(0);
  return { stdout: result.stdout.toString(), report: JSON.parse(readFileSync(file, "utf8")) };
}

function expectOrderedSummary(
  summary: { count: number; mean: number; min: number; p50: number; p90: number; p99: number; max: number },
  count: number,
) {
  expect(summary.count).toBe(count);
  expect(summary.min).toBeGreaterThan(0);
  expect(summary.min).toBeLessThanOrEqual(summary.p50);
  expect(summary.p50).toBeLessThanOrEqual(summary.p90);
  expect(summary.p90).toBeLessThanOrEqual(summary.p99);
  expect(summary.p99).toBeLessThanOrEqual(summary.max);
  // The mean of equal values may differ from them in the last bit.
  expect(summary.mean).toBeGreaterThanOrEqual(summary.min * (1 - 1e-12));
  expect(summary.mean).toBeLessThanOrEqual(summary.max * (1 + 1e-12));
}

function expectReportHeader(report: Record<string, unknown>, command: string) {
  const packageJson = JSON.parse(readFileSync(resolve(import.meta.dir, "../../package.json"), "utf8"));
  expect(report.version).toBe(packageJson.version);
  expect(report.command).toBe(command);
  expect(report.model).toBe("vllm-ts-demo");
  expect(report.device).toMatchObject({ backend: "cpu", name: expect.any(String) });
  expect(report.configuration).toBeObject();
}

/** Every request finished, output tokens exactly as asked, rates consistent with the time. */
function expectCompleteRun(run: RunResult, numRequests: number, promptTokens: number, outputTokens: number) {
  expect(run.numRequests).toBe(numRequests);
  expect(run.rejectedRequests).toBe(0);
  expect(run.promptTokens).toBe(promptTokens);
  expect(run.outputTokens).toBe(outputTokens);
  expect(run.elapsedSeconds).toBeGreaterThan(0);
  expect(run.requestsPerSecond).toBeCloseTo(numRequests / run.elapsedSeconds, 6);
  expect(run.outputTokensPerSecond).toBeCloseTo(outputTokens / run.elapsedSeconds, 6);
  expect(run.totalTokensPerSecond).toBeCloseTo((promptTokens + outputTokens) / run.elapsedSeconds, 6);
  expectOrderedSummary(run.latency, numRequests);
  expectOrderedSummary(run.timeToFirstToken, numRequests);
  expect(run.kvWasteRatio).toBeGreaterThanOrEqual(0);
  expect(run.kvWasteRatio).toBeLessThanOrEqual(1);
  expect(run.maxConcurrentRequests).toBeGreaterThanOrEqual(1);
  expect(run.schedulerMsPerStep).toBeGreaterThan(0);
}

describe("bench throughput", () => {
  test(
    "runs random requests to completion and reports requests/s and tokens/s",
    () => {
      const { stdout, report } = bench("throughput", [
        ...TINY,
        "--num-prompts",
        "8",
        "--input-len",
        "16",
        "--output-len",
        "8",
      ]);
      expect(stdout).toContain("output tokens/s");
      expectReportHeader(report, "bench throughput");
      expect(report.configuration).toMatchObject({ dataset: "random", numPrompts: 8 });
      expectCompleteRun(report.results, 8, 8 * 16, 8 * 8);
    },
    SLOW,
  );

  test(
    "takes prompts from a JSONL file, plain and ShareGPT records alike",
    () => {
      const file = join(dir, "prompts.jsonl");
      writeFileSync(
        file,
        [
          JSON.stringify({ prompt: "The capital of France is" }),
          JSON.stringify({
            conversations: [
              { from: "human", value: "Tell me a story." },
              { from: "gpt", value: "Once upon a time" },
            ],
          }),
          "",
        ].join("\n"),
      );
      const { report } = bench("throughput", [...TINY, "--dataset", file, "--num-prompts", "5", "--output-len", "4"]);
      expect(report.results.numRequests).toBe(2);
      expect(report.results.rejectedRequests).toBe(0);
      expect(report.results.promptTokens).toBeGreaterThan(4);
      expect(report.results.outputTokens).toBeGreaterThan(4);
    },
    SLOW,
  );

  test(
    "--structured-output constrains every request and reports the grammar's mask time",
    () => {
      const schemaFile = join(dir, "schema.json");
      const schema = { type: "object", properties: { id: { type: "integer" } }, required: ["id"] };
      writeFileSync(schemaFile, JSON.stringify(schema));
      for (const [value, constraint] of [
        ["json", { json: { type: "array", minItems: 4, maxItems: 4 } }],
        [schemaFile, { json: schema }],
      ] as const) {
        const args = [...TINY, "--num-prompts", "4", "--input-len", "8", "--output-len", "16"];
        const { stdout, report } = bench("throughput", [...args, "--structured-output", value]);
        expect(stdout).toContain("grammar mask ms/token");
        expect(report.configuration.structuredOutput).toMatchObject(constraint);
        expect(report.results.rejectedRequests).toBe(0);
        expect(report.results.outputTokens).toBeGreaterThan(0);
        expect(report.results.maskMsPerToken).toBeGreaterThan(0);
      }
    },
    SLOW,
  );

  test("--structured-output refuses what it does not know", () => {
    const result = Bun.spawnSync([EXECUTABLE, "bench", "throughput", ...TINY, "--structured-output", "yaml"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr.toString()).toContain("--structured-output yaml: expected json | json_object | FILE.json");
  });
});

describe("bench latency", () => {
  test(
    "times whole batches and reports ordered percentiles",
    () => {
      const { stdout, report } = bench("latency", [
        ...TINY,
        "--batch-size",
        "4",
        "--input-len",
        "16",
        "--output-len",
        "8",
        "--num-iters",
        "5",
        "--num-iters-warmup",
        "1",
      ]);
      expect(stdout).toContain("p99");
      expectReportHeader(report, "bench latency");
      expect(report.configuration).toMatchObject({
        batchSize: 4,
        inputLen: 16,
        outputLen: 8,
        numIters: 5,
        numItersWarmup: 1,
      });
      expectOrderedSummary(report.results.latency, 5);
      expect(report.results.iterationSeconds).toHaveLength(5);
      expect(report.results.outputTokens).toBe(5 * 4 * 8);
      expect(report.results.outputTokensPerSecond).toBeGreaterThan(0);
    },
    SLOW,
  );

  test(
    "every engine option reaches the engine (--enforce-eager among them)",
    () => {
      const { report } = bench("latency", [
        ...TINY,
        "--batch-size",
        "2",
        "--input-len",
        "8",
        "--output-len",
        "2",
        "--num-iters",
        "1",
        "--num-iters-warmup",
        "0",
        "--enforce-eager",
        "--max-num-seqs",
        "3",
        "--max-num-batched-tokens",
        "100",
        "--no-enable-prefix-caching",
      ]);
      expect(report.configuration.engine).toMatchObject({
        enforceEager: true,
        maxNumSeqs: 3,
        maxNumBatchedTokens: 100,
        enablePrefixCaching: false,
      });
    },
    SLOW,
  );
});

describe("bench compare", () => {
  test(
    "continuous batching against both static baselines on the same requests: waste, idle waits, the ratios",
    () => {
      const { stdout, report } = bench("compare", [
        "--device",
        "cpu",
        "--num-prompts",
        "8",
        "--input-len",
        "8:24",
        "--output-len",
        "4:12",
        "--max-model-len",
        "128",
        "--max-num-seqs",
        "4",
        "--prefix-len",
        "32",
        "--suffix-len",
        "8",
        "--scheduler-requests",
        "32",
        "--rounds",
        "3",
      ]);
      expect(stdout).toContain("continuous / static output throughput");
      expect(stdout).toContain("continuous / static-drop:");
      expect(stdout).toContain("each policy's fastest of 3 interleaved rounds");
      expectReportHeader(report, "bench compare");
      const {
        continuous,
        static: staticRun,
        staticDrop,
        prefixCaching,
        throughputRatio,
        schedulerOverhead,
      } = report.results;
      const { promptTokens, outputTokens } = continuous;
      expect(promptTokens).toBeWithin(8 * 8, 8 * 24 + 1);
      expect(outputTokens).toBeWithin(8 * 4, 8 * 12 + 1);
      for (const run of [continuous, staticRun, staticDrop]) expectCompleteRun(run, 8, promptTokens, outputTokens);
      for (const run of [staticRun, staticDrop]) {
        expect(run.kvWasteRatio).toBeGreaterThan(continuous.kvWasteRatio);
        expect(run.maxConcurrentRequests).toBeLessThanOrEqual(4);
        // 4 sequences of max-model-len 128 make the budget.
        expect(run.sequencesThatFit).toBe(4);
      }
      expect(continuous.sequencesThatFit).toBeGreaterThan(4);
      // Each policy's figures are its fastest run's of the three.
      const { rounds } = report.results;
      for (const [name, run] of [
        ["continuous", continuous],
        ["static", staticRun],
        ["static-drop", staticDrop],
      ] as const) {
        const elapsed = rounds[name]
          .map((r: { elapsedSeconds: number }) => r.elapsedSeconds)
          .sort((a: number, b: number) => a - b);
        expect(elapsed).toHaveLength(3);
        expect(run.elapsedSeconds).toBe(elapsed[0]);
        expect(run.cpuSeconds).toBeGreaterThan(0);
      }
      // A static batch returns every request at its end: each first token comes with the last.
      expect(staticRun.timeToFirstToken).toEqual(staticRun.latency);
      expect(staticDrop.timeToFirstToken.mean).toBeLessThan(staticDrop.latency.mean);
      expect(throughputRatio.static).toBeCloseTo(continuous.outputTokensPerSecond / staticRun.outputTokensPerSecond, 6);
      expect(throughputRatio.staticDrop).toBeCloseTo(
        continuous.outputTokensPerSecond / staticDrop.outputTokensPerSecond,
        6,
      );
      expect(schedulerOverhead).toMatchObject({ runningRequests: 32 });
      expect(schedulerOverhead.msPerStep).toBeGreaterThan(0);
      expectCompleteRun(prefixCaching.on, 8, 8 * 40, outputTokens);
      expectCompleteRun(prefixCaching.off, 8, 8 * 40, outputTokens);
      expect(prefixCaching.on.prefixCacheHitRate).toBeGreaterThan(0);
      expect(prefixCaching.off.prefixCacheHitRate).toBe(0);
    },
    SLOW,
  );
});
