// `vllm-ts bench latency`: end-to-end time of one batch, as vLLM's, over timed iterations after
// warm-up ones (src/bench/engine/latency.ts runs it).
import { defineCommand } from "citty";
import { runLatency } from "../../bench/engine/latency.ts";
import { coreOptions, engineArgs, integer, modelArgs } from "../engine-args.ts";
import { reportArgs } from "./bench-args.ts";
import { runBench } from "./run-bench.ts";

export default defineCommand({
  meta: { name: "latency", description: "End-to-end latency of one batch: mean and p50/p90/p99 over iterations" },
  args: {
    ...modelArgs,
    ...engineArgs,
    "batch-size": { type: "string", default: "8", description: "Requests in the batch" },
    "input-len": { type: "string", default: "32", description: "Prompt tokens of each request" },
    "output-len": { type: "string", default: "128", description: "Tokens each request generates (ignoring EOS)" },
    "num-iters": { type: "string", default: "30", description: "Timed iterations" },
    "num-iters-warmup": { type: "string", default: "10", description: "Untimed iterations first" },
    ...reportArgs,
  },
  run: ({ args }) =>
    runBench(() =>
      runLatency({
        core: coreOptions(args),
        batchSize: integer("batch-size", args["batch-size"], 1),
        inputLen: integer("input-len", args["input-len"], 1),
        outputLen: integer("output-len", args["output-len"], 1),
        numIters: integer("num-iters", args["num-iters"], 1),
        numItersWarmup: integer("num-iters-warmup", args["num-iters-warmup"], 0),
        outputJson: args["output-json"],
      }),
    ),
});
