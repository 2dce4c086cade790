// The stages that prove the CUDA backend right: the device and its copy bandwidth, every
// native-op and model test on it, the engine end to end against the CPU backend, and
// compute-sanitizer's memcheck and racecheck over the attention, KV-cache, sampling and
// token-bitmask kernels.

import { readdirSync } from "node:fs";
import { join } from "node:path";
import { round } from "../../src/bench/kernels/timing.ts";
import { QUICK_TIMING_FLAGS } from "../../test/helpers/tiny-kernel-model.ts";
import { addCounts, type TestCounts } from "./junit.ts";
import type { E2eReport, KernelsReport } from "./reports.ts";
import {
  bundledTests,
  type CheckContext,
  commandStatus,
  type Figure,
  failureLine,
  readJson,
  type Stage,
  type StageOutcome,
  vllm,
} from "./stage.ts";

function testFiles(context: CheckContext, folder: string, names?: string[]): string[] {
  const all = readdirSync(join(context.kit, "tests", folder))
    .filter((name) => name.endsWith(".test.js"))
    .sort();
  return (names ?? all).map((name) => {
    if (!all.includes(name)) throw new Error(`the kit has no tests/${folder}/${name}`);
    return `${folder}/${name}`;
  });
}

function testOutcome(counts: TestCounts | null, status: StageOutcome["status"], detail: string): StageOutcome {
  if (counts === null)
    return { status: status === "passed" ? "failed" : status, summary: `no test report (${detail})` };
  const failedOk = status === "passed" && counts.failed === 0 && counts.passed > 0;
  const failures = counts.failures
    .slice(0, 3)
    .map((f) => `${f.test}: ${f.message.split("\n")[0]}`)
    .join("; ");
  return {
    status: failedOk ? "passed" : status === "passed" ? "failed" : status,
    summary: `${counts.passed} passed, ${counts.failed} failed${counts.notRun ? `, ${counts.notRun} not run` : ""}${failures ? `; ${failures}` : ""}${status === "timeout" ? "; timed out" : ""}`,
    tests: counts,
  };
}

const device: Stage = {
  name: "device",
  title: "Device facts and copy bandwidth",
  limitSeconds: 40,
  dryLimitSeconds: 60,
  async run(context, run) {
    const figures: Record<string, Figure> = {};
    if (!context.dryRun) {
      const query = "name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem,power.limit";
      const smi = await run.command(["nvidia-smi", `--query-gpu=${query}`, "--format=csv,noheader,nounits"]);
      await run.command(["nvidia-smi"]);
      const fields = query.split(",");
      const values = smi.tail
        .split("\n")
        .findLast((line) => line.split(",").length === fields.length)
        ?.split(",");
      fields.forEach((key, i) => {
        figures[`nvidia_smi.${key}`] = values?.[i]?.trim() ?? null;
      });
      if (context.python) {
        const props =
          "import torch; p = torch.cuda.get_device_properties(0); print('sm_count', p.multi_processor_count); print('l2_bytes', getattr(p, 'L2_cache_size', 0)); print('torch', torch.__version__, torch.version.cuda)";
        const torch = await run.command([context.python, "-c", props]);
        for (const [key, pattern] of [
          ["sm_count", /^sm_count (\d+)/m],
          ["l2_mib", /^l2_bytes (\d+)/m],
        ] as const) {
          const value = pattern.exec(torch.tail)?.[1];
          if (value) figures[key] = key === "l2_mib" ? round(Number(value) / 2 ** 20, 1) : Number(value);
        }
        figures.torch = /^torch (.+)$/m.exec(torch.tail)?.[1] ?? null;
      }
    }
    // The copy bandwidth every sweep measures first, with one small decode-attention case.
    const json = join(context.raw, "copy-bandwidth.json");
    const shape = context.dryRun
      ? ["--model", context.models.llama, "--context-lens", "16", ...QUICK_TIMING_FLAGS]
      : ["--context-lens", "1024"];
    const result = await vllm(context, run, [
      "bench",
      "kernels",
      "--device",
      "cuda",
      "--sweep",
      "decode-attention",
      "--batch-sizes",
      "1",
      ...shape,
      "--output-json",
      json,
    ]);
    if (result.exitCode !== 0)
      return { status: commandStatus([result]), summary: `bench kernels: ${failureLine(result)}`, figures };
    const report = readJson<KernelsReport>(json);
    figures.backend = report.device.backend;
    figures.device_name = report.device.name;
    figures.copy_bandwidth_gbs = report.baselines?.copy_bandwidth_gbs ?? null;
    figures.peak_bandwidth_gbs = report.device.peak_bandwidth_gbs;
    const onCuda = report.device.backend === "cuda";
    return {
      status: onCuda ? "passed" : "failed",
      summary: `${report.device.name} (${report.device.backend}); copy ${figures.copy_bandwidth_gbs} GB/s; peak ${figures.peak_bandwidth_gbs ?? "unknown"} GB/s${figures.sm_count ? `; ${figures.sm_count} SMs` : ""}`,
      figures,
    };
  },
};

const tests: Stage = {
  name: "tests",
  title: "Native-op, model and engine tests on the device",
  limitSeconds: 120,
  dryLimitSeconds: 300,
  async run(context, run) {
    // Every op against its reference, and the paged forward of all four architectures against the
    // f64 reference forward: the whole process on the CUDA library.
    const kernels = await bundledTests(context, run, {
      files: [
        ...testFiles(context, "native"),
        ...testFiles(context, "worker", ["forward.test.js", "quantized-forward.test.js"]),
      ],
      junit: join(context.raw, "tests-kernels.xml"),
      env: { VLLM_TS_LIBRARY: context.cudaLibrary },
    });
    // The engine on CUDA against the CPU backend, and decode graphs against eager steps: these open
    // both libraries, so CUDA's is named to them alone.
    const engine = await bundledTests(context, run, {
      files: [
        ...testFiles(context, "engine", ["cuda-backend.test.js"]),
        ...testFiles(context, "worker", ["decode-graphs.test.js"]),
      ],
      junit: join(context.raw, "tests-engine.xml"),
      env: { VLLM_TS_CUDA_LIBRARY: context.cudaLibrary },
    });
    const groups = [kernels, engine];
    // With cuBLAS found, the 16-bit matmuls above ran on it: our own GEMV and tensor-core GEMM
    // kernels get their own pass (the emulation never loads cuBLAS, so a dry run has none).
    if (!context.dryRun) {
      groups.push(
        await bundledTests(context, run, {
          files: [
            ...testFiles(context, "native", ["matmul.test.js"]),
            ...testFiles(context, "worker", ["forward.test.js"]),
          ],
          junit: join(context.raw, "tests-own-kernels.xml"),
          env: { VLLM_TS_LIBRARY: context.cudaLibrary, VT_DISABLE_CUBLAS: "1" },
        }),
      );
    }
    const reported = groups.map((g) => g.counts).filter((c): c is TestCounts => c !== null);
    const counts = reported.length === 0 ? null : reported.reduce(addCounts);
    const results = groups.map((g) => g.result);
    return testOutcome(counts, commandStatus(results), results.map(failureLine).join("; "));
  },
};

const e2e: Stage = {
  name: "e2e",
  title: "End to end: greedy tokens on CUDA and CPU, a streamed completion from the server",
  limitSeconds: 75,
  dryLimitSeconds: 240,
  async run(context, run) {
    const json = join(context.raw, "e2e.json");
    const args = [
      context.executable,
      "run",
      join(context.kit, "e2e.js"),
      "--executable",
      context.executable,
      "--output-json",
      json,
    ];
    if (context.dryRun) args.push("--cuda-library", context.cudaLibrary);
    const result = await run.command(args, { env: { ...context.env, BUN_BE_BUN: "1" } });
    let report: E2eReport;
    try {
      report = readJson<E2eReport>(json);
    } catch {
      return {
        status: commandStatus([result]) === "passed" ? "failed" : commandStatus([result]),
        summary: `no report: ${failureLine(result)}`,
      };
    }
    const { generate, serve } = report;
    return {
      status: result.timedOut ? "timeout" : report.passed && result.exitCode === 0 ? "passed" : "failed",
      summary:
        `f32 models: ${generate.f32Matches}/${generate.f32Total} equal on CUDA and CPU; bf16: ${generate.bf16Matches}/${generate.bf16Total} equal (bf16 activations on CUDA, f32 on CPU: informative); ` +
        `server stream via the openai client: ${serve.matches ? "same text as generate" : `differs (${serve.error ?? "text mismatch"})`}`,
      figures: {
        f32_equal: `${generate.f32Matches}/${generate.f32Total}`,
        bf16_equal: `${generate.bf16Matches}/${generate.bf16Total}`,
        serve_stream_equal: serve.matches,
      },
    };
  },
};

/** Small shapes of the kernels with shared memory, KV writes and sampling: the sanitizers are slow. */
const SANITIZED_FILES = [
  "paged-attention.test.js",
  "kv-cache.test.js",
  "sample.test.js",
  "token-bitmask.test.js",
  "quant.test.js",
];
const SANITIZED_TESTS =
  "head_dim 128, block 16$|vt_write_kv_cache|vt_copy_blocks|greedy rows|hand-made rows|vt_apply_token_bitmask|vt_convert quantizes|vt_matmul with m = (1|9) matches";

function sanitizerStage(tool: "memcheck" | "racecheck"): Stage {
  return {
    name: tool,
    title: `compute-sanitizer ${tool}: attention, KV-cache, sampling, token-bitmask and quantized kernels`,
    limitSeconds: 45,
    dryLimitSeconds: 300,
    async run(context, run) {
      const files = testFiles(context, "native", SANITIZED_FILES);
      const junit = join(context.raw, `${tool}.xml`);
      if (context.dryRun) {
        // No GPU: AddressSanitizer on the emulated kernels stands in for memcheck; racecheck has
        // no stand-in to run (the emulation reverses odd blocks' thread order in every test).
        if (tool === "racecheck") {
          return {
            status: "skipped",
            summary:
              "needs a GPU (compute-sanitizer); the emulation runs odd blocks' threads in reverse order in every test instead",
          };
        }
        if (context.asan === null)
          return { status: "skipped", summary: "needs a GPU, or LIBASAN and ASAN_TEST_OPTIONS (make test sets them)" };
        const { result, counts } = await bundledTests(context, run, {
          files,
          junit,
          filter: SANITIZED_TESTS,
          env: {
            VLLM_TS_LIBRARY: context.asan.library,
            LD_PRELOAD: context.asan.runtime,
            ASAN_OPTIONS: context.asan.options,
          },
        });
        const outcome = testOutcome(counts, commandStatus([result]), failureLine(result));
        return {
          ...outcome,
          summary: `AddressSanitizer on the emulated kernels (memcheck's stand-in): ${outcome.summary}`,
        };
      }
      if (context.computeSanitizer === null) return { status: "failed", summary: "compute-sanitizer not found" };
      const { result, counts } = await bundledTests(context, run, {
        files,
        junit,
        filter: SANITIZED_TESTS,
        env: { VLLM_TS_LIBRARY: context.cudaLibrary },
        prefix: [
          context.computeSanitizer,
          "--tool",
          tool,
          "--error-exitcode",
          "99",
          "--print-limit",
          "20",
          "--target-processes",
          "all",
        ],
      });
      const summaryLine = /(ERROR SUMMARY: .*|RACECHECK SUMMARY: .*)/.exec(result.tail)?.[1] ?? "no sanitizer summary";
      const errors = Number(/(\d+) errors?/.exec(summaryLine)?.[1] ?? NaN);
      const outcome = testOutcome(counts, commandStatus([result]), failureLine(result));
      return {
        ...outcome,
        status:
          outcome.status === "passed" && errors === 0
            ? "passed"
            : outcome.status === "passed"
              ? "failed"
              : outcome.status,
        summary: `${summaryLine}; tests: ${outcome.summary}`,
        figures: { errors: Number.isNaN(errors) ? null : errors },
      };
    },
  };
}

export const correctnessStages: Stage[] = [device, tests, e2e, sanitizerStage("memcheck"), sanitizerStage("racecheck")];
