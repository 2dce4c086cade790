// The pieces every stage of the GPU check shares: what the check runs against (the context), what
// a stage reports, and the commands it runs: the vllm-ts executable, the bundled tests under its
// own Bun (BUN_BE_BUN=1), and Python.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseJunit, type TestCounts } from "./junit.ts";
import { type CommandResult, runCommand } from "./run-command.ts";

export interface CheckContext {
  /** A rehearsal without a GPU: the emulated CUDA library, tiny shapes, no torch needed. */
  dryRun: boolean;
  /** The vllm-ts executable (CUDA library embedded). */
  executable: string;
  /** The unpacked kit: tests/, models/, e2e.js, the Python baselines. */
  kit: string;
  /** Logs and raw JSON of every stage; packed into the artifacts. */
  raw: string;
  /** The CUDA library the tests run on: the kit's copy of the embedded one, or the emulated one. */
  cudaLibrary: string;
  /** Dry run: the emulated library built with AddressSanitizer (memcheck's stand-in), libasan, its options. */
  asan: { library: string; runtime: string; options: string } | null;
  /** Environment of every process (cuBLAS's folder on LD_LIBRARY_PATH when found). */
  env: Record<string, string | undefined>;
  /** Added for `vllm-ts ... --device cuda`: the emulated library in a dry run, nothing on a GPU. */
  cudaEnv: Record<string, string | undefined>;
  /** A python3 that imports torch, or null. */
  python: string | null;
  /** compute-sanitizer's path, or null. */
  computeSanitizer: string | null;
  /** The model configs of the figures (Llama-3.1-8B and Qwen3-0.6B shapes, or a tiny one). */
  models: { llama: string; qwen3: string };
}

export type Figure = number | string | boolean | null;

export interface StageOutcome {
  status: "passed" | "failed" | "timeout" | "skipped";
  /** One line: what was found (or why it was skipped or failed). */
  summary: string;
  figures?: Record<string, Figure>;
  tests?: TestCounts;
}

export interface Stage {
  name: string;
  title: string;
  /** Seconds this stage may take on the GPU, and in a dry run. */
  limitSeconds: number;
  dryLimitSeconds: number;
  run(context: CheckContext, run: StageRun): Promise<StageOutcome>;
}

/** A stage's time and log: each command gets what is left of the stage's limit. */
export class StageRun {
  private readonly started = performance.now();

  constructor(
    readonly logFile: string,
    private readonly limitSeconds: number,
  ) {}

  remainingSeconds(): number {
    return this.limitSeconds - (performance.now() - this.started) / 1000;
  }

  command(
    argv: string[],
    options: { cwd?: string; env?: Record<string, string | undefined> } = {},
  ): Promise<CommandResult> {
    return runCommand(argv, {
      ...options,
      timeoutSeconds: Math.max(1, this.remainingSeconds()),
      logFile: this.logFile,
    });
  }
}

/** `vllm-ts ...args` on CUDA; BUN_BE_BUN is left out, or the executable would run Bun. */
export function vllm(context: CheckContext, run: StageRun, args: string[]) {
  return run.command([context.executable, ...args], {
    env: { ...context.env, BUN_BE_BUN: undefined, ...context.cudaEnv },
  });
}

/** `bun test` on bundled test files (paths under the kit's tests/), with a JUnit report parsed. */
export async function bundledTests(
  context: CheckContext,
  run: StageRun,
  options: {
    files: string[];
    junit: string;
    env?: Record<string, string | undefined>;
    filter?: string;
    prefix?: string[];
  },
): Promise<{ result: CommandResult; counts: TestCounts | null }> {
  const argv = [
    ...(options.prefix ?? []),
    context.executable,
    "test",
    "--timeout",
    "300000",
    "--reporter=junit",
    `--reporter-outfile=${options.junit}`,
    ...(options.filter ? ["-t", options.filter] : []),
    ...options.files,
  ];
  // The bundles name their embedded libraries relative to the working directory: the tests folder.
  const result = await run.command(argv, {
    cwd: join(context.kit, "tests"),
    env: { ...context.env, BUN_BE_BUN: "1", ...options.env },
  });
  let counts: TestCounts | null = null;
  try {
    counts = parseJunit(readFileSync(options.junit, "utf8"));
  } catch {
    // No report: the process died before writing it; the status says so.
  }
  return { result, counts };
}

/** A JSON report the check's own commands wrote, of the shape they write. */
export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, "utf8"));
}

/** The status of a stage whose commands all had to succeed. */
export function commandStatus(results: CommandResult[]): StageOutcome["status"] {
  if (results.some((r) => r.timedOut)) return "timeout";
  return results.every((r) => r.exitCode === 0) ? "passed" : "failed";
}

/** "exit 1: <last line>" for a summary. */
export function failureLine(result: CommandResult): string {
  const last =
    result.tail
      .split("\n")
      .filter((line) => line.trim() !== "")
      .at(-1) ?? "";
  return result.timedOut
    ? `timed out after ${result.seconds.toFixed(0)} s`
    : `exit ${result.exitCode}: ${last.slice(0, 300)}`;
}
