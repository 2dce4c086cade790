// `vllm-ts bench throughput`: offline throughput, as vLLM's. Every request is handed to an
// in-process engine core at once and the engine runs until all are done.
import type { CoreOptions } from "../../engine/core-protocol.ts";
import { EngineCore } from "../../engine/engine-core.ts";
import { openModelOnDevice } from "../../engine/model-on-device.ts";
import { RequestGenerator } from "../../engine/random.ts";
import { loadModelTokenizer } from "../../model/load-tokenizer.ts";
import { deviceOf, fixed, formatTable, percent, writeReport } from "../report.ts";
import { benchmarkConstraint } from "../structured-output.ts";
import { type Workload, workloadRequests } from "../workload.ts";
import { engineConfig, runRequests } from "./offline.ts";

export interface ThroughputOptions {
  core: CoreOptions;
  workload: Workload;
  /** The dataset flags as given, which the output names and the report's configuration repeats. */
  datasetFlags: { dataset: string; inputLen: string; outputLen: string; rangeRatio: number };
  /** `--structured-output`: every request constrained (see src/bench/structured-output.ts). */
  structuredOutput?: string;
  outputJson: string | undefined;
}

/** Runs the whole workload at once, prints the rates, and writes the report. */
export async function runThroughput(options: ThroughputOptions): Promise<void> {
  const { datasetFlags } = options;
  const constraint =
    options.structuredOutput === undefined
      ? undefined
      : benchmarkConstraint(options.structuredOutput, options.workload.output.high);
  const bench = await openModelOnDevice(options.core);
  const grammarVocab = { dir: bench.model.dir, ggufFile: bench.model.ggufFile, tokenizer: options.core.tokenizer };
  const core = EngineCore.create(bench.backend, bench.model, engineConfig(options.core), grammarVocab);
  try {
    const requests = await workloadRequests(options.workload, {
      random: new RequestGenerator(options.core.seed),
      vocabSize: bench.model.config.vocabSize,
      maxModelLen: core.config.maxModelLen,
      tokenizer: () => loadModelTokenizer(bench.model, options.core.tokenizer),
    });
    const eosTokenIds = bench.model.generationConfig.eosTokenIds ?? bench.model.config.eosTokenIds;
    const result = await runRequests(
      core,
      requests,
      "throughput",
      constraint ? { structuredOutputs: constraint, eosTokenIds } : {},
    );
    const masks = core.structuredOutputs.maskTime;
    const maskMsPerToken = masks.count > 0 ? masks.totalMs / masks.count : null;
    console.log(
      `${bench.model.name} on ${bench.backend.description}, ${requests.length} requests from ${datasetFlags.dataset}`,
    );
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
        ...(constraint ? [["grammar mask ms/token", fixed(maskMsPerToken ?? 0, 3)]] : []),
      ]),
    );
    await writeReport(options.outputJson, {
      command: "bench throughput",
      model: bench.model.name,
      device: deviceOf(bench.backend),
      configuration: {
        dataset: datasetFlags.dataset,
        numPrompts: requests.length,
        inputLen: datasetFlags.inputLen,
        outputLen: datasetFlags.outputLen,
        rangeRatio: datasetFlags.rangeRatio,
        structuredOutput: constraint ?? null,
        seed: options.core.seed,
        dtype: bench.model.weights.dtype,
        engine: core.config,
        kvCacheSize: core.kvCacheSize,
      },
      results: { ...result, maskMsPerToken },
    });
  } finally {
    core.close();
    bench.close();
  }
}
