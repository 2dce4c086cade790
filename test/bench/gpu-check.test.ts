// The GPU check's parts that must hold before any GPU is seen: the kit fits the 60 MiB a GPU
// machine can be sent and holds everything the check runs; a stage's command is killed with its
// children at the limit; Bun's JUnit reports are read right; the report renders the figures.
// (`make test` then runs the whole check with --dry-run on the emulated CUDA library.)
import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { cpuVariants } from "#embedded-libraries";
import { parseJunit } from "../../bench/gpu/junit.ts";
import { renderMarkdown, type StageReport } from "../../bench/gpu/report-markdown.ts";
import { runCommand } from "../../bench/gpu/run-command.ts";
import { fractionTogether } from "../../bench/gpu/stages-figures.ts";

const KIT = resolve(import.meta.dir, "../../build/gpu-kit");
const KIT_LIMIT_BYTES = 60 * 2 ** 20;

function filesUnder(folder: string): string[] {
  return readdirSync(folder, { recursive: true, encoding: "utf8" }).filter((path) =>
    statSync(join(folder, path)).isFile(),
  );
}

describe("the kit (make gpu-kit)", () => {
  test("fits in 60 MiB", () => {
    if (!existsSync(join(KIT, ".complete"))) throw new Error(`${KIT} is missing: run make gpu-kit first`);
    const bytes = filesUnder(KIT).reduce((sum, path) => sum + statSync(join(KIT, path)).size, 0);
    expect(bytes).toBeLessThan(KIT_LIMIT_BYTES);
  });

  test("holds the executable, every native-op test, every CPU variant, the scripts, the baselines and the models", () => {
    const files = new Set(filesUnder(KIT));
    const nativeTests = readdirSync(resolve(import.meta.dir, "../native")).filter(
      (name) => name.endsWith(".test.ts") && name !== "emulation.test.ts",
    );
    const expected = [
      "vllm-ts.xz",
      "check.js",
      "check.sh",
      "e2e.js",
      "torch_baseline.py",
      "hf_generate_baseline.py",
      "tests/worker/forward.test.js",
      "tests/worker/decode-graphs.test.js",
      "tests/engine/cuda-backend.test.js",
      ...cpuVariants.map((variant) => `tests/${basename(variant.library)}.xz`),
      "models/llama-3.1-8b/config.json",
      "models/qwen3-0.6b/config.json",
      ...nativeTests.map((name) => `tests/native/${name.replace(/\.ts$/, ".js")}`),
      // The CUDA library travels where nvcc built it.
      ...(existsSync(resolve(import.meta.dir, "../../build/libvllm_ts_cuda.so"))
        ? ["tests/libvllm_ts_cuda.so.xz"]
        : []),
    ];
    for (const file of expected) expect(files.has(file) ? file : `missing: ${file}`).toBe(file);
  });
});

describe("a stage's command", () => {
  test("is killed with the processes it started when its time is up, and its log is kept", async () => {
    const log = join(mkdtempSync(join(tmpdir(), "vllm-ts-check-")), "stage.log");
    const result = await runCommand(["sh", "-c", "sleep 30 & echo grandchild $!; wait"], {
      timeoutSeconds: 1,
      logFile: log,
    });
    expect(result.timedOut).toBe(true);
    expect(result.seconds).toBeLessThan(10);
    const grandchild = Number(/grandchild (\d+)/.exec(result.tail)![1]);
    await Bun.sleep(100);
    // Gone, or a zombie left for its new parent to reap: either way no longer running.
    const state = existsSync(`/proc/${grandchild}/stat`)
      ? readFileSync(`/proc/${grandchild}/stat`, "utf8").split(") ")[1]![0]
      : "gone";
    expect(["gone", "Z"]).toContain(state);
  });

  test("reports its exit code and the end of its output", async () => {
    const log = join(mkdtempSync(join(tmpdir(), "vllm-ts-check-")), "stage.log");
    const result = await runCommand(["sh", "-c", "echo first; echo last; exit 3"], {
      timeoutSeconds: 10,
      logFile: log,
    });
    expect(result).toMatchObject({ exitCode: 3, timedOut: false });
    expect(result.tail).toBe("first\nlast");
  });
});

describe("Bun's JUnit report", () => {
  test("gives passed, failed and skipped tests, and each failure's name and message", async () => {
    const folder = mkdtempSync(join(tmpdir(), "vllm-ts-junit-"));
    writeFileSync(
      join(folder, "sample.test.ts"),
      [
        'import { describe, expect, test } from "bun:test";',
        'describe("group", () => { test("adds <1 & 1>", () => expect(1 + 1).toBe(3)); });',
        'test("passes", () => expect(true).toBe(true));',
        'test.skip("skipped", () => {});',
      ].join("\n"),
    );
    const junit = join(folder, "report.xml");
    Bun.spawnSync([process.execPath, "test", `--reporter-outfile=${junit}`, "--reporter=junit", "./sample.test.ts"], {
      cwd: folder,
      stdout: "ignore",
      stderr: "ignore",
    });
    const counts = parseJunit(await Bun.file(junit).text());
    expect(counts).toMatchObject({ passed: 1, failed: 1, notRun: 1 });
    expect(counts.failures[0]).toMatchObject({ file: "sample.test.ts", test: "group > adds <1 & 1>" });
    expect(counts.failures[0]!.message).toContain("Expected: 3");
  });
});

describe("stage figures", () => {
  test("the fraction of peak of matmuls run one after the other weighs each by its time", () => {
    // 10 µs at 0.8 and 30 µs at 0.6: (8 + 18) / 40 of the peak's bytes per µs.
    const rows = [
      { time_us: 10, fraction_of_peak_bandwidth: 0.8 },
      { time_us: 30, fraction_of_peak_bandwidth: 0.6 },
      { time_us: 99 },
    ];
    expect(fractionTogether(rows)).toBe(0.65);
    expect(fractionTogether([{ time_us: 5 }])).toBeNull();
  });
});

describe("gpu-report.md", () => {
  const stage = (name: string, figures: StageReport["figures"]): StageReport => ({
    name,
    title: name,
    status: "passed",
    seconds: 1,
    limit_seconds: 10,
    summary: `${name} | done`,
    figures,
  });

  test("puts each figure in the README's row, says '-' for a missing one, and draws the decode grid", () => {
    const markdown = renderMarkdown({
      date: "2026-01-01T00:00:00Z",
      total_seconds: 3,
      stages: [
        stage("device", { device_name: "NVIDIA H200" }),
        stage("decode-attention", {
          fraction_of_peak_large_min: 0.81,
          fraction_of_peak_large_max: 0.9,
          b1_c1024: 0.01,
          b256_c1024: 0.5,
          b256_c32768: 0.88,
        }),
        stage("hf-generate", { vllm_ts_over_hf: 15.5, output_tokens_per_second: 1000 }),
        stage("quantized-matmul", {
          q4k_m1_fraction_of_peak_min: 0.55,
          q4k_m1_fraction_of_peak_max: 0.8,
          q4k_m1_fraction_of_peak_layers: 0.74,
        }),
      ],
    });
    expect(markdown).toStartWith("# GPU check: NVIDIA H200");
    expect(markdown).toContain(
      "| decode attention, batch >= 32 x context >= 4096, fraction of peak bandwidth (min .. max) | >= 0.80 | 0.81 .. 0.9 |",
    );
    expect(markdown).toContain("| end to end, output tokens/s: vllm-ts / HF generate | 14-24x | 15.5 (- / 1000) |");
    expect(markdown).toContain("| matmul vs torch.matmul, default path, m >= 256 (min over layers) | >= 0.9 | - |");
    expect(markdown).toContain(
      "| Q4_K matmul, m = 1 (Llama-3.1-8B layers), weight bandwidth fraction of peak (min .. max; the four layers one after the other) | >= 0.70 | 0.55 .. 0.8; 0.74 |",
    );
    expect(markdown).toContain("| batch \\ context | 1024 | 32768 |");
    expect(markdown).toContain("| 256 | 0.5 | 0.88 |");
    expect(markdown).toContain("| 1 | 0.01 | - |");
    // A summary's own pipe cannot break the table.
    expect(markdown).toContain("device \\| done");
  });
});
