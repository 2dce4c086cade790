// The commands of one round on one GGUF file, in the order they run: each vllm-ts command followed
// by the llama.cpp command it is compared with, so that both engines see the same state of a shared
// machine (A B A B ...), each command a fresh process and each reading its figures from its output.
import { join } from "node:path";
import {
  batchedBenchArgs,
  type LlamaBenchTest,
  llamaBenchArgs,
  parseBatchedBench,
  parseLlamaBench,
} from "./llama-cpp-tools.ts";
import { runCommand } from "./run-command.ts";
import {
  forwardArgs,
  forwardFigures,
  latencyArgs,
  latencyFigures,
  throughputArgs,
  throughputFigures,
} from "./vllm-ts-side.ts";
import {
  DECODE_GENERATED_TOKENS,
  DECODE_PROMPT_TOKENS,
  decodeBatchSizes,
  decodeFigure,
  END_TO_END_FIGURE,
  END_TO_END_TOKENS,
  type PeerWorkload,
  prefillFigure,
  THROUGHPUT_FIGURE,
  TOOL_REPETITIONS,
} from "./workload.ts";

export type Engine = "vllm-ts" | "llama.cpp";

export interface MeasurementResult {
  /** Tokens/s by figure name. */
  figures: Record<string, number>;
  /** What a llama.cpp tool says of its own set-up (build, CPU, batch sizes, flash attention, KV types). */
  setup: Record<string, unknown> | null;
}

export interface Measurement {
  engine: Engine;
  argv: string[];
  run(): Promise<MeasurementResult>;
}

function vllmTs(
  argv: string[],
  outputJson: string,
  read: (file: string) => Promise<Record<string, number>>,
): Measurement {
  return {
    engine: "vllm-ts",
    argv,
    run: async () => {
      await runCommand(argv);
      return { figures: await read(outputJson), setup: null };
    },
  };
}

function llamaCpp(argv: string[], read: (output: string) => MeasurementResult): Measurement {
  return {
    engine: "llama.cpp",
    argv,
    run: async () => {
      const { stdout, stderr } = await runCommand(argv);
      return read(`${stdout}\n${stderr}`);
    },
  };
}

function batchedDecode(file: string, workload: PeerWorkload, batchSizes: number[]): Measurement {
  const options = { promptTokens: DECODE_PROMPT_TOKENS, generatedTokens: DECODE_GENERATED_TOKENS };
  return llamaCpp(batchedBenchArgs(file, { ...options, parallel: batchSizes, threads: workload.threads }), (output) => {
    const rows = parseBatchedBench(output);
    const figures = Object.fromEntries(
      batchSizes.map((batch) => {
        const row = rows.find((r) => r.parallel === batch);
        if (!row) throw new Error(`llama-batched-bench printed no row for -npl ${batch}`);
        return [decodeFigure(batch), row.decodeTokensPerSecond];
      }),
    );
    return { figures, setup: rows[0]!.setup };
  });
}

function llamaBench(file: string, workload: PeerWorkload): Measurement {
  const prefill = workload.groups.has("prefill");
  const endToEnd = workload.groups.has("end-to-end");
  const argv = llamaBenchArgs(file, {
    promptTokens: prefill ? [workload.prefillTokens] : [],
    generatedTokens: endToEnd ? [END_TO_END_TOKENS] : [],
    threads: workload.threads,
    repetitions: TOOL_REPETITIONS,
  });
  return llamaCpp(argv, (output) => {
    const tests = parseLlamaBench(output);
    const find = (predicate: (test: LlamaBenchTest) => boolean, name: string) => {
      const test = tests.find(predicate);
      if (!test) throw new Error(`llama-bench printed no ${name} result`);
      return test.tokensPerSecond;
    };
    const figures: Record<string, number> = {};
    if (prefill) {
      figures[prefillFigure(workload.prefillTokens)] = find(
        (test) => test.nPrompt === workload.prefillTokens && test.nGen === 0,
        `pp${workload.prefillTokens}`,
      );
    }
    if (endToEnd) {
      figures[END_TO_END_FIGURE] = find(
        (test) => test.nPrompt === 0 && test.nGen === END_TO_END_TOKENS,
        `tg${END_TO_END_TOKENS}`,
      );
    }
    return { figures, setup: tests[0]?.setup ?? null };
  });
}

function batchedThroughput(file: string, workload: PeerWorkload): Measurement {
  const argv = batchedBenchArgs(file, {
    promptTokens: workload.requestInputTokens,
    generatedTokens: workload.requestOutputTokens,
    parallel: [workload.requests],
    threads: workload.threads,
  });
  return llamaCpp(argv, (output) => {
    const row = parseBatchedBench(output).find((r) => r.parallel === workload.requests);
    if (!row) throw new Error(`llama-batched-bench printed no row for -npl ${workload.requests}`);
    return { figures: { [THROUGHPUT_FIGURE]: row.totalTokensPerSecond }, setup: row.setup };
  });
}

/** `scratch` is where vllm-ts's commands write their JSON reports. */
export function roundOfMeasurements(file: string, workload: PeerWorkload, scratch: string): Measurement[] {
  const { groups } = workload;
  const batchSizes = decodeBatchSizes(workload);
  const measurements: Measurement[] = [];
  if (batchSizes.length > 0 || groups.has("prefill")) {
    const json = join(scratch, "forward.json");
    measurements.push(vllmTs(forwardArgs(file, workload, json), json, (f) => forwardFigures(f, workload)));
  }
  if (batchSizes.length > 0) measurements.push(batchedDecode(file, workload, batchSizes));
  if (groups.has("end-to-end")) {
    const json = join(scratch, "latency.json");
    measurements.push(vllmTs(latencyArgs(file, workload, json), json, latencyFigures));
  }
  if (groups.has("prefill") || groups.has("end-to-end")) measurements.push(llamaBench(file, workload));
  if (groups.has("throughput")) {
    const json = join(scratch, "throughput.json");
    measurements.push(vllmTs(throughputArgs(file, workload, json), json, throughputFigures));
    measurements.push(batchedThroughput(file, workload));
  }
  return measurements;
}
