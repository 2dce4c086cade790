// vllm-ts and llama.cpp side by side on the CPU: the same GGUF files (random weights in the shapes
// of bench/models/, BF16 and llama-quantize's Q8_0 and Q4_K_M), the same threads, the same figures,
// the engines' commands alternating and each figure the median of --repeats rounds. Writes
// bench/results/peer-llama-cpp-<model>.json: per format and figure, both numbers, their ratio
// (vllm-ts / llama.cpp), what each side counts and the commands. Takes minutes; not run in CI.
//   make llama-cpp-tools && bun bench/peer/llama-cpp.ts [--models smollm2-135m,qwen2.5-0.5b]
//     [--formats bf16,q8_0,q4_k_m] [--figures decode,end-to-end,batched-decode,prefill,throughput]
//     [--repeats 3] [--threads 2] [--batch-sizes 8,32,64] [--prefill-tokens 512]
//     [--requests 64] [--request-input-tokens 128] [--request-output-tokens 128] [--output-dir bench/results]
import { mkdir } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { basename, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { percentile } from "../../src/bench/percentiles.ts";
import { fixed, formatTable } from "../../src/bench/report.ts";
import { FORMATS, type Format, ggufFile } from "./gguf-files.ts";
import { missingToolsReason } from "./llama-cpp-tools.ts";
import { type Engine, roundOfMeasurements } from "./measurements.ts";
import { commandLine } from "./run-command.ts";
import { missingExecutableReason } from "./vllm-ts-side.ts";
import { FIGURE_GROUPS, type FigureGroup, figureDescriptions, type PeerWorkload } from "./workload.ts";

const REPOSITORY = resolve(import.meta.dir, "../..");
const MODELS = ["smollm2-135m", "qwen2.5-0.5b"];

const { values: options } = parseArgs({
  options: {
    models: { type: "string", default: MODELS.join(",") },
    formats: { type: "string", default: Object.keys(FORMATS).join(",") },
    figures: { type: "string", default: FIGURE_GROUPS.join(",") },
    repeats: { type: "string", default: "3" },
    threads: { type: "string", default: "2" },
    "batch-sizes": { type: "string", default: "8,32,64" },
    "prefill-tokens": { type: "string", default: "512" },
    requests: { type: "string", default: "64" },
    "request-input-tokens": { type: "string", default: "128" },
    "request-output-tokens": { type: "string", default: "128" },
    "output-dir": { type: "string", default: join(REPOSITORY, "bench/results") },
  },
});

function listOption<T extends string>(name: string, value: string, allowed: readonly T[]): T[] {
  const items = value.split(",").filter(Boolean);
  const unknown = items.filter((item) => !allowed.includes(item as T));
  if (items.length === 0 || unknown.length > 0)
    throw new Error(`--${name}: ${unknown.join(", ") || "empty"}; choose from ${allowed.join(", ")}`);
  return items as T[];
}

function positiveInteger(name: string, value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) throw new Error(`--${name} must be a positive integer, got ${value}`);
  return number;
}

const models = listOption("models", options.models, MODELS);
const formats = listOption("formats", options.formats, Object.keys(FORMATS) as Format[]);
const repeats = positiveInteger("repeats", options.repeats);
const workload: PeerWorkload = {
  groups: new Set(listOption<FigureGroup>("figures", options.figures, FIGURE_GROUPS)),
  threads: positiveInteger("threads", options.threads),
  batchSizes: options["batch-sizes"].split(",").map((size) => positiveInteger("batch-sizes", size)),
  prefillTokens: positiveInteger("prefill-tokens", options["prefill-tokens"]),
  requests: positiveInteger("requests", options.requests),
  requestInputTokens: positiveInteger("request-input-tokens", options["request-input-tokens"]),
  requestOutputTokens: positiveInteger("request-output-tokens", options["request-output-tokens"]),
};

const missing = missingToolsReason() ?? missingExecutableReason();
if (missing !== null) {
  console.error(missing);
  process.exit(1);
}

/** The command as the report shows it: paths from the repository root, Bun as `bun`. */
function shownCommand(argv: string[]): string {
  return commandLine(
    argv.map((arg) =>
      arg === process.execPath ? "bun" : arg.startsWith(REPOSITORY) ? relative(REPOSITORY, arg) : arg,
    ),
  );
}

function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

/** Every round's figures on one file, engines alternating, then each figure's median per engine. */
async function measureFormat(model: string, format: Format) {
  const file = await ggufFile(model, format, workload.threads);
  const scratch = join(REPOSITORY, "build/peer/scratch", `${model}-${format}`);
  await mkdir(scratch, { recursive: true });
  const measurements = roundOfMeasurements(file, workload, scratch);
  const samples: Record<Engine, Record<string, number[]>> = { "vllm-ts": {}, "llama.cpp": {} };
  const llamaCppSetup: Record<string, unknown> = {};
  for (let round = 1; round <= repeats; round++) {
    for (const measurement of measurements) {
      console.log(
        `[${model} ${format} round ${round}/${repeats}] ${measurement.engine}: ${shownCommand(measurement.argv)}`,
      );
      const { figures, setup } = await measurement.run();
      for (const [name, value] of Object.entries(figures)) {
        samples[measurement.engine][name] ??= [];
        samples[measurement.engine][name].push(value);
        console.log(`  ${name}: ${fixed(value, 1)} tokens/s`);
      }
      if (setup !== null) llamaCppSetup[basename(measurement.argv[0]!)] ??= setup;
    }
  }
  const figures = figureDescriptions(workload).map((figure) => {
    const vllmTs = median(samples["vllm-ts"][figure.name]!);
    const llamaCpp = median(samples["llama.cpp"][figure.name]!);
    return {
      ...figure,
      vllmTs: { tokensPerSecond: vllmTs, samples: samples["vllm-ts"][figure.name], counts: figure.vllmTs },
      llamaCpp: { tokensPerSecond: llamaCpp, samples: samples["llama.cpp"][figure.name], counts: figure.llamaCpp },
      ratio: vllmTs / llamaCpp,
    };
  });
  return {
    format,
    llamaQuantizeType: FORMATS[format],
    file: relative(REPOSITORY, file),
    figures,
    commands: measurements.map((m) => ({ engine: m.engine, command: shownCommand(m.argv) })),
    llamaCppSetup,
  };
}

await mkdir(options["output-dir"], { recursive: true });
for (const model of models) {
  // Every file first, so that writing and quantizing never run between two measurements.
  for (const format of formats) await ggufFile(model, format, workload.threads);
  const loadAverageBefore = loadavg();
  const started = new Date();
  const results = [];
  for (const format of formats) results.push(await measureFormat(model, format));
  const report = {
    benchmark: "vllm-ts and llama.cpp side by side on the CPU (bench/peer/llama-cpp.ts)",
    model,
    shapes: `bench/models/${model}/config.json, random weights`,
    date: started.toISOString(),
    machine: {
      cpu: cpus()[0]?.model,
      logicalCores: cpus().length,
      // llama.cpp's threads spin while they wait for each other, so a busy machine slows it badly:
      // the 1, 5 and 15-minute load averages say whether the figures can be trusted.
      loadAverageBefore,
      loadAverageAfter: loadavg(),
    },
    threads: workload.threads,
    repeats,
    statistic: "median over the rounds of each command's own figure",
    llamaCpp: "build 0ad4a86 (node-llama-cpp 3.22.1's prebuilt CPU libraries; tools built by make llama-cpp-tools)",
    vllmTsStorage:
      "the GGUF file's matrices in their own formats; norms, embedding and KV cache in bf16 (llama.cpp: the file's types, KV cache f16)",
    formats: results,
  };
  const output = join(options["output-dir"], `peer-llama-cpp-${model}.json`);
  await Bun.write(output, `${JSON.stringify(report, null, 2)}\n`);
  for (const result of results) {
    console.log(`\n${model} ${result.format}: tokens/s, median of ${repeats}`);
    console.log(
      formatTable([
        ["figure", "vllm-ts", "llama.cpp", "vllm-ts / llama.cpp"],
        ...result.figures.map((f) => [
          f.name,
          fixed(f.vllmTs.tokensPerSecond, 1),
          fixed(f.llamaCpp.tokensPerSecond, 1),
          fixed(f.ratio, 2),
        ]),
      ]),
    );
  }
  console.log(`wrote ${relative(process.cwd(), output)}`);
}
