// `vllm-ts bench throughput`: offline throughput, as vLLM's. Every request is handed to an
// in-process engine core at once and the engine runs until all are done.
import { defineCommand } from "citty";
import { EngineCore } from "../../engine/engine-core.ts";
import { RequestGenerator } from "../../engine/random.ts";
import { loadModelTokenizer } from "../../model/load-tokenizer.ts";
import { coreOptions, engineArgs, modelArgs } from "../engine-args.ts";
import { datasetArgs, datasetRequests } from "./dataset.ts";
import { engineConfig, runBench, runRequests } from "./offline.ts";
import { openModelOnDevice } from "../../engine/model-on-device.ts";
import { deviceOf, fixed, formatTable, percent, reportArgs, writeReport } from "./report.ts";

export default defineCommand({
  meta: { name: "throughput", description: "Offline throughput: all requests at once to an in-process engine (requests/s, tokens/s)" },
  args: { ...modelArgs, ...engineArgs, ...datasetArgs, ...reportArgs },
  run: ({ args }) =>
    runBench(async () => {
      const options = coreOptions(args);
      const bench = await openModelOnDevice(options);
      const core = EngineCore.create(bench.backend, bench.model, engineConfig(options));
      try {
        const requests = await datasetRequests(args, {
          random: new RequestGenerator(options.seed),
          vocabSize: bench.model.config.vocabSize,
          maxModelLen: core.config.maxModelLen,
          tokenizer: () => loadModelTokenizer(bench.model),
        });
        const result = runRequests(core, requests, "throughput");
        console.log(`${bench.model.name} on ${bench.backend.name} (${bench.backend.deviceName}), ${requests.length} requests from ${args.dataset}`);
        console.log(
          formatTable([
            ["requests", `${result.numRequests - result.rejectedRequests} finished, ${result.rejectedRequests} rejected`],
            ["prompt / output tokens", `${result.promptTokens} / ${result.outputTokens}`],
            ["elapsed", `${fixed(result.elapsedSeconds, 3)} s (${result.steps} steps)`],
            ["requests/s", fixed(result.requestsPerSecond)],
            ["total tokens/s", fixed(result.totalTokensPerSecond, 1)],
            ["output tokens/s", fixed(result.outputTokensPerSecond, 1)],
            ["most running at once", String(result.maxConcurrentRequests)],
            ["prefix cache hit rate", percent(result.prefixCacheHitRate)],
            ["preemptions", String(result.numPreemptions)],
          ]),
        );
        await writeReport(args["output-json"], {
          command: "bench throughput",
          model: bench.model.name,
          device: deviceOf(bench.backend),
          configuration: { dataset: args.dataset, numPrompts: requests.length, inputLen: args["input-len"], outputLen: args["output-len"], rangeRatio: Number(args["range-ratio"]), seed: options.seed, dtype: bench.model.weights.dtype, engine: core.config, kvCacheSize: core.kvCacheSize },
          results: result,
        });
      } finally {
        core.close();
        bench.close();
      }
    }),
});
