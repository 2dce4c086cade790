// `vllm-ts bench throughput`: offline throughput, as vLLM's (src/bench/engine/throughput.ts runs
// it): every request handed to an in-process engine core at once.
import { defineCommand } from "citty";
import { runThroughput } from "../../bench/engine/throughput.ts";
import { coreOptions, engineArgs, modelArgs } from "../engine-args.ts";
import { datasetArgs, reportArgs, structuredOutputArgs, workloadOf } from "./bench-args.ts";
import { runBench } from "./run-bench.ts";

export default defineCommand({
  meta: {
    name: "throughput",
    description: "Offline throughput: all requests at once to an in-process engine (requests/s, tokens/s)",
  },
  args: { ...modelArgs, ...engineArgs, ...datasetArgs, ...structuredOutputArgs, ...reportArgs },
  run: ({ args }) =>
    runBench(() =>
      runThroughput({
        core: coreOptions(args),
        workload: workloadOf(args),
        datasetFlags: {
          dataset: args.dataset,
          inputLen: args["input-len"],
          outputLen: args["output-len"],
          rangeRatio: Number(args["range-ratio"]),
        },
        structuredOutput: args["structured-output"],
        outputJson: args["output-json"],
      }),
    ),
});
