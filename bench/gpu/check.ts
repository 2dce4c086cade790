// The GPU check's stages, run in order under one deadline, each with its own time limit; after
// every stage the report ($OUT/gpu-report.json and .md) and the artifacts (logs, raw JSON) are
// rewritten, so whatever stops the run, what was found is kept. bench/gpu/check.sh unpacks the kit
// and runs this file with the executable's own Bun; see bench/README.md, "The GPU check".

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus, hostname } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { TINY_KERNEL_MODEL_CONFIG } from "../../test/helpers/tiny-kernel-model.ts";
import { renderMarkdown, type StageReport } from "./report-markdown.ts";
import { type CheckContext, type Stage, StageRun } from "./stage.ts";
import { correctnessStages } from "./stages-correctness.ts";
import { figureStages } from "./stages-figures.ts";

const STAGES: Stage[] = [...correctnessStages, ...figureStages];
/** Below this many seconds a stage is not started: it could not finish anything useful. */
const MIN_STAGE_SECONDS = 10;

const { values: args } = parseArgs({
  options: {
    "dry-run": { type: "boolean", default: false },
    stages: { type: "string" },
    kit: { type: "string" },
    executable: { type: "string" },
    repo: { type: "string", default: "." },
    out: { type: "string" },
    raw: { type: "string" },
    "deadline-seconds": { type: "string", default: "420" },
  },
});

function required(name: "kit" | "executable" | "out" | "raw"): string {
  const value = args[name];
  if (!value) throw new Error(`--${name} is required (bench/gpu/check.sh passes it)`);
  return resolve(value);
}

function firstLine(argv: string[]): string | null {
  const result = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8" });
  return result.status === 0 ? (result.stdout.trim().split("\n")[0] ?? null) : null;
}

/** The folder holding libcublas.so.13 or .12 (PyTorch's wheel or the CUDA toolkit), if any. */
function findCublas(python: string | null): string | null {
  const folders = ["/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"];
  if (python) {
    const script =
      "import glob, site; print('\\n'.join(d for p in site.getsitepackages() for d in sorted(glob.glob(p + '/nvidia/**/lib', recursive=True))))";
    folders.unshift(
      ...(spawnSync(python, ["-c", script], { encoding: "utf8" }).stdout ?? "").split("\n").filter(Boolean),
    );
  }
  return (
    folders.find((folder) => ["libcublas.so.13", "libcublas.so.12"].some((name) => existsSync(join(folder, name)))) ??
    null
  );
}

function buildContext(): { context: CheckContext; setup: Record<string, unknown> } {
  const dryRun = args["dry-run"];
  const kit = required("kit");
  const raw = required("raw");
  mkdirSync(raw, { recursive: true });
  const repo = resolve(args.repo);
  const emulated = join(repo, "build/libvllm_ts_cuda_emu.so");
  const python = firstLine([
    "python3",
    "-c",
    dryRun
      ? "import torch; print(torch.__version__)"
      : "import torch; assert torch.cuda.is_available(); print(torch.__version__)",
  ])
    ? "python3"
    : null;
  const cublas = dryRun ? null : findCublas(python);
  const env: Record<string, string | undefined> = {
    ...process.env,
    // The executable unpacks its embedded libraries here rather than in the home folder.
    XDG_CACHE_HOME: join(dirname(required("executable")), "cache"),
    ...(cublas ? { LD_LIBRARY_PATH: [cublas, process.env.LD_LIBRARY_PATH].filter(Boolean).join(":") } : {}),
  };
  let models = { llama: join(kit, "models", "llama-3.1-8b"), qwen3: join(kit, "models", "qwen3-0.6b") };
  if (dryRun) {
    const tiny = join(raw, "tiny-model");
    mkdirSync(tiny, { recursive: true });
    writeFileSync(join(tiny, "config.json"), JSON.stringify(TINY_KERNEL_MODEL_CONFIG));
    models = { llama: tiny, qwen3: tiny };
  }
  const context: CheckContext = {
    dryRun,
    executable: required("executable"),
    kit,
    raw,
    cudaLibrary: dryRun ? emulated : join(kit, "tests", "libvllm_ts_cuda.so"),
    // `make test` names AddressSanitizer's runtime and options (the Makefile's, for its own run).
    asan:
      dryRun && process.env.LIBASAN && process.env.ASAN_TEST_OPTIONS
        ? {
            library: join(repo, "build/libvllm_ts_cuda_emu_asan.so"),
            runtime: process.env.LIBASAN,
            options: process.env.ASAN_TEST_OPTIONS,
          }
        : null,
    env,
    cudaEnv: dryRun ? { VLLM_TS_LIBRARY: emulated } : {},
    python,
    computeSanitizer: dryRun
      ? null
      : (firstLine(["sh", "-c", "command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer"]) ?? null),
    models,
  };
  for (const library of [context.cudaLibrary, context.executable])
    if (!existsSync(library)) throw new Error(`${library} is missing`);
  const setup = {
    mode: dryRun ? "dry-run (emulated CUDA library, tiny shapes)" : "gpu",
    host: { hostname: hostname(), cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length },
    cuda_library: context.cudaLibrary,
    cublas_folder: cublas,
    python_with_torch: python !== null,
    compute_sanitizer: context.computeSanitizer,
  };
  return { context, setup };
}

function selectedStages(): Stage[] {
  if (!args.stages) return STAGES;
  const names = args.stages.split(",").map((name) => name.trim());
  for (const name of names) {
    if (!STAGES.some((stage) => stage.name === name))
      throw new Error(`unknown stage "${name}"; stages: ${STAGES.map((s) => s.name).join(", ")}`);
  }
  return STAGES.filter((stage) => names.includes(stage.name));
}

function writeReports(
  out: string,
  raw: string,
  report: { setup: Record<string, unknown>; stages: StageReport[]; started: number },
): void {
  const document = {
    version: 1,
    date: new Date().toISOString(),
    total_seconds: Math.round((Date.now() - report.started) / 1000),
    ...report.setup,
    stages: report.stages,
  };
  writeFileSync(join(out, "gpu-report.json"), `${JSON.stringify(document, null, 2)}\n`);
  writeFileSync(join(out, "gpu-report.md"), renderMarkdown(document));
  // Logs and raw figures in one file beside the reports: only a few files come back from a GPU machine.
  spawnSync("tar", ["czf", join(out, "gpu-artifacts.tar.gz"), "-C", dirname(raw), basename(raw)]);
}

async function main(): Promise<number> {
  const out = required("out");
  mkdirSync(out, { recursive: true });
  const started = Date.now();
  const deadline = started + Number(args["deadline-seconds"]) * 1000;
  const { context, setup } = buildContext();
  const stages = selectedStages();
  const reports: StageReport[] = [];
  for (const stage of stages) {
    const limit = Math.min(context.dryRun ? stage.dryLimitSeconds : stage.limitSeconds, (deadline - Date.now()) / 1000);
    const report: StageReport = {
      name: stage.name,
      title: stage.title,
      status: "skipped",
      seconds: 0,
      limit_seconds: Math.round(limit),
      summary: "",
    };
    if (limit < MIN_STAGE_SECONDS) {
      report.summary = "not started: the check's deadline was reached";
    } else {
      console.log(`== ${stage.name}: ${stage.title} (limit ${Math.round(limit)} s)`);
      const run = new StageRun(join(context.raw, `${stage.name}.log`), limit);
      const stageStarted = performance.now();
      try {
        Object.assign(report, await stage.run(context, run));
      } catch (error) {
        Object.assign(report, {
          status: "failed",
          summary: `the check itself failed: ${(error as Error).stack ?? error}`,
        });
      }
      report.seconds = Math.round((performance.now() - stageStarted) / 100) / 10;
    }
    console.log(`   ${report.status} in ${report.seconds} s: ${report.summary}`);
    reports.push(report);
    writeReports(out, context.raw, { setup, stages: reports, started });
  }
  const bad = reports.filter((r) => r.status === "failed" || r.status === "timeout");
  console.log(
    `${reports.length - bad.length} of ${reports.length} stages passed or skipped; report in ${join(out, "gpu-report.md")}`,
  );
  return bad.length === 0 ? 0 : 1;
}

process.exit(await main());
