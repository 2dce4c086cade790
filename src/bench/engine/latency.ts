// `vllm-ts bench latency`: end-to-end time of one batch (prompts in, every output token out), as
// vLLM's, repeated after warm-up iterations; each iteration has fresh prompts so the prefix cache
// does not turn later ones into decode-only runs.
import type { CoreOptions } from "../../engine/core-protocol.ts";
import { EngineCore } from "../../engine/engine-core.ts";
import { openModelOnDevice } from "../../engine/model-on-device.ts";
import { RequestGenerator } from "../../engine/random.ts";
import { UsageError } from "../../usage-error.ts";
import { deviceOf, fixed, formatTable, Progress, summarize, writeReport } from "../report.ts";
import { randomRequests } from "../workload.ts";
import { engineConfig, runRequests } from "./offline.ts";

export interface LatencyOptions {
  core: CoreOptions;
  /** Requests in the batch. */
  batchSize: number;
  /** Prompt tokens of each request. */
  inputLen: number;
  /** Tokens each request generates (ignoring EOS). */
  outputLen: number;
  /** Timed iterations, after `numItersWarmup` untimed ones. */
  numIters: number;
  numItersWarmup: number;
  outputJson: string | undefined;
}

/** Times the iterations, prints the percentiles of the batch's latency, and writes the report. */
export async function runLatency(options: LatencyOptions): Promise<void> {
  const { batchSize, inputLen, outputLen, numIters, numItersWarmup } = options;
  const bench = await openModelOnDevice(options.core);
  const core = EngineCore.create(bench.backend, bench.model, engineConfig(options.core));
  try {
    if (inputLen + outputLen > core.config.maxModelLen) {
      throw new UsageError(
        `--input-len + --output-len = ${inputLen + outputLen}, more than --max-model-len ${core.config.maxModelLen}`,
      );
    }
    const random = new RequestGenerator(options.core.seed);
    const length = { low: inputLen, high: inputLen };
    const output = { low: outputLen, high: outputLen };
    const iterate = (label: string) =>
      runRequests(core, randomRequests(random, batchSize, length, output, bench.model.config.vocabSize), label, {
        progress: false,
      });
    const progress = new Progress("latency", numItersWarmup + numIters, true, "iterations");
    for (let i = 0; i < numItersWarmup; i++) {
      await iterate(`warmup${i}`);
      progress.update(i + 1);
    }
    const runs = [];
    for (let i = 0; i < numIters; i++) {
      runs.push(await iterate(`iter${i}`));
      progress.update(numItersWarmup + i + 1);
    }
    progress.done();
    const latency = summarize(runs.map((run) => run.elapsedSeconds));
    const timeToFirstToken = summarize(runs.map((run) => run.timeToFirstToken.max));
    const outputTokens = runs.reduce((sum, run) => sum + run.outputTokens, 0);
    const outputTokensPerSecond = outputTokens / runs.reduce((sum, run) => sum + run.elapsedSeconds, 0);
    console.log(
      `${bench.model.name} on ${bench.backend.description}: batch ${batchSize}, input ${inputLen}, output ${outputLen} tokens, ${numIters} iterations after ${numItersWarmup} warm-up`,
    );
    console.log(
      formatTable([
        ["seconds per batch", "mean", "p50", "p90", "p99"],
        ["end to end", ...[latency.mean, latency.p50, latency.p90, latency.p99].map((s) => fixed(s, 4))],
        [
          "last first token",
          ...[timeToFirstToken.mean, timeToFirstToken.p50, timeToFirstToken.p90, timeToFirstToken.p99].map((s) =>
            fixed(s, 4),
          ),
        ],
      ]),
    );
    console.log(`output tokens/s over the timed iterations: ${fixed(outputTokensPerSecond, 1)}`);
    await writeReport(options.outputJson, {
      command: "bench latency",
      model: bench.model.name,
      device: deviceOf(bench.backend),
      configuration: {
        batchSize,
        inputLen,
        outputLen,
        numIters,
        numItersWarmup,
        seed: options.core.seed,
        dtype: bench.model.weights.dtype,
        engine: core.config,
        kvCacheSize: core.kvCacheSize,
      },
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
}
