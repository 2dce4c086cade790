// `vllm-ts bench latency`: end-to-end time of one batch (prompts in, every output token out), as
// vLLM's, repeated after warm-up iterations; each iteration has fresh prompts so the prefix cache
// does not turn later ones into decode-only runs.
import { defineCommand } from "citty";
import { EngineCore } from "../../engine/engine-core.ts";
import { RequestGenerator } from "../../engine/random.ts";
import { coreOptions, engineArgs, integer, modelArgs, UsageError } from "../engine-args.ts";
import { randomRequests } from "./dataset.ts";
import { engineConfig, runBench, runRequests } from "./offline.ts";
import { openModelOnDevice } from "../../engine/model-on-device.ts";
import { deviceOf, fixed, formatTable, Progress, reportArgs, summarize, writeReport } from "./report.ts";

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
    runBench(async () => {
      const options = coreOptions(args);
      const batchSize = integer("batch-size", args["batch-size"], 1);
      const inputLen = integer("input-len", args["input-len"], 1);
      const outputLen = integer("output-len", args["output-len"], 1);
      const numIters = integer("num-iters", args["num-iters"], 1);
      const numItersWarmup = integer("num-iters-warmup", args["num-iters-warmup"], 0);
      const bench = await openModelOnDevice(options);
      const core = EngineCore.create(bench.backend, bench.model, engineConfig(options));
      try {
        if (inputLen + outputLen > core.config.maxModelLen) {
          throw new UsageError(`--input-len + --output-len = ${inputLen + outputLen}, more than --max-model-len ${core.config.maxModelLen}`);
        }
        const random = new RequestGenerator(options.seed);
        const length = { low: inputLen, high: inputLen };
        const output = { low: outputLen, high: outputLen };
        const iterate = (label: string) => runRequests(core, randomRequests(random, batchSize, length, output, bench.model.config.vocabSize), label, { progress: false });
        const progress = new Progress("latency", numItersWarmup + numIters, true, "iterations");
        for (let i = 0; i < numItersWarmup; i++) {
          iterate(`warmup${i}`);
          progress.update(i + 1);
        }
        const runs = [];
        for (let i = 0; i < numIters; i++) {
          runs.push(iterate(`iter${i}`));
          progress.update(numItersWarmup + i + 1);
        }
        progress.done();
        const latency = summarize(runs.map((run) => run.elapsedSeconds));
        const timeToFirstToken = summarize(runs.map((run) => run.timeToFirstToken.max));
        const outputTokens = runs.reduce((sum, run) => sum + run.outputTokens, 0);
        const outputTokensPerSecond = outputTokens / runs.reduce((sum, run) => sum + run.elapsedSeconds, 0);
        console.log(`${bench.model.name} on ${bench.backend.name} (${bench.backend.deviceName}): batch ${batchSize}, input ${inputLen}, output ${outputLen} tokens, ${numIters} iterations after ${numItersWarmup} warm-up`);
        console.log(
          formatTable([
            ["seconds per batch", "mean", "p50", "p90", "p99"],
            ["end to end", ...[latency.mean, latency.p50, latency.p90, latency.p99].map((s) => fixed(s, 4))],
            ["last first token", ...[timeToFirstToken.mean, timeToFirstToken.p50, timeToFirstToken.p90, timeToFirstToken.p99].map((s) => fixed(s, 4))],
          ]),
        );
        console.log(`output tokens/s over the timed iterations: ${fixed(outputTokensPerSecond, 1)}`);
        await writeReport(args["output-json"], {
          command: "bench latency",
          model: bench.model.name,
          device: deviceOf(bench.backend),
          configuration: { batchSize, inputLen, outputLen, numIters, numItersWarmup, seed: options.seed, dtype: bench.model.weights.dtype, engine: core.config, kvCacheSize: core.kvCacheSize },
          results: {
            latency,
            iterationSeconds: runs.map((run) => run.elapsedSeconds),
            timeToFirstTokenOfBatch: timeToFirstToken,
            outputTokens,
            outputTokensPerSecond,
          },
        });
      } finally {
        core.close();
        bench.close();
      }
    }),
});
