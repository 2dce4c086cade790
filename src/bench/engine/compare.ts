// `vllm-ts bench compare`: the seed document's experiment, in one process on the same requests
// and the same KV memory: continuous batching with paged KV against static batching (whole
// batches, KV reserved for max-model-len per sequence). Then the scheduler's time per step alone
// with many running requests, and a shared-prefix workload with prefix caching on and off.
import type { CoreOptions } from "../../engine/core-protocol.ts";
import { EngineCore } from "../../engine/engine-core.ts";
import { KVCacheManager } from "../../engine/kv-cache-manager.ts";
import { openModelOnDevice } from "../../engine/model-on-device.ts";
import { RequestGenerator } from "../../engine/random.ts";
import { Request } from "../../engine/request.ts";
import { SamplingParams } from "../../engine/sampling-params.ts";
import { Scheduler } from "../../engine/scheduler.ts";
import { KvCacheTensors } from "../../worker/kv-cache-tensors.ts";
import { compareChart, kvSparklines } from "../plot/compare.ts";
import { writePlot } from "../plot/svg.ts";
import { deviceOf, fixed, formatTable, percent, writeReport } from "../report.ts";
import { type BenchRequest, type LengthRange, randomRequests, randomTokens } from "../workload.ts";
import { emptyTimeline, engineConfig, type RunResult, type RunTimeline, runRequests } from "./offline.ts";

export interface CompareOptions {
  /** The model and engine; maxNumSeqs caps the static baseline and, with maxModelLen, sizes the default KV budget. */
  core: CoreOptions & Required<Pick<CoreOptions, "maxNumSeqs" | "maxModelLen">>;
  /** Most running sequences of continuous batching. */
  continuousMaxNumSeqs: number;
  numPrompts: number;
  input: LengthRange;
  output: LengthRange;
  /** Shared-prefix workload: tokens every prompt starts with, then at most `suffixLen` of its own. */
  prefixLen: number;
  suffixLen: number;
  /** Running requests when timing the scheduler alone. */
  schedulerRequests: number;
  plot: string | undefined;
  outputJson: string | undefined;
}

/** Scheduler bookkeeping alone (no model): decode steps with `runningRequests` running. */
function schedulerOverhead(runningRequests: number, stepsToTime: number) {
  const manager = new KVCacheManager({ numBlocks: runningRequests * 64, blockSize: 16, enablePrefixCaching: true });
  const scheduler = new Scheduler({
    kvCacheManager: manager,
    maxNumBatchedTokens: 8192,
    maxNumSeqs: runningRequests,
    maxModelLen: 1024,
    enableChunkedPrefill: true,
  });
  for (let i = 0; i < runningRequests; i++) {
    scheduler.addRequest(
      new Request({
        requestId: `s${i}`,
        promptTokenIds: Array.from({ length: 128 }, (_, j) => (i * 131 + j) % 30000),
        samplingParams: new SamplingParams({ temperature: 0, maxTokens: 900, ignoreEos: true }),
      }),
    );
  }
  const stepOnce = () => {
    const output = scheduler.schedule();
    scheduler.updateFromOutput(output, new Map([...output.numScheduledTokens.keys()].map((id) => [id, [7]])));
  };
  // Admit and prefill everyone (each prompt fits one step's budget), then time decode steps.
  while (scheduler.numWaiting > 0) stepOnce();
  const started = performance.now();
  for (let i = 0; i < stepsToTime; i++) stepOnce();
  return { runningRequests, msPerStep: (performance.now() - started) / stepsToTime };
}

/** Runs the four workloads and the scheduler alone, prints the tables, then draws and writes what was asked for. */
export async function runCompare(options: CompareOptions): Promise<void> {
  const { core: coreOptions, continuousMaxNumSeqs, numPrompts, input, output, prefixLen, suffixLen } = options;
  const { maxNumSeqs, maxModelLen } = coreOptions;
  const bench = await openModelOnDevice(coreOptions);
  try {
    const { model, backend } = bench;
    // One KV budget for every run: what a static batch of max-num-seqs max-length sequences needs.
    const kvCacheMemory =
      coreOptions.kvCacheMemory ??
      maxNumSeqs * maxModelLen * KvCacheTensors.bytesPerBlock(model.config, 1, model.weights.dtype);
    const random = new RequestGenerator(coreOptions.seed);
    const requests = randomRequests(random, numPrompts, input, output, model.config.vocabSize);
    const prefix = randomTokens(random, prefixLen, model.config.vocabSize);
    const prefixRequests: BenchRequest[] = requests.map((request) => ({
      promptTokenIds: [...prefix, ...request.promptTokenIds.slice(0, suffixLen)],
      outputLen: request.outputLen,
    }));

    const run = async (
      label: string,
      workload: BenchRequest[],
      overrides: { scheduling: "static" | "continuous"; maxNumSeqs: number; enablePrefixCaching?: boolean },
      timeline?: RunTimeline,
    ) => {
      const core = EngineCore.create(backend, model, { ...engineConfig(coreOptions), kvCacheMemory, ...overrides });
      try {
        const result = await runRequests(core, workload, label, { timeline });
        const blockSize = core.kvCacheSize.blockSize;
        const meanBlocks =
          workload.reduce((sum, r) => sum + Math.ceil((r.promptTokenIds.length + r.outputLen) / blockSize), 0) /
          workload.length;
        // Static batching reserves max-model-len per sequence; paged KV only the blocks a sequence fills.
        const sequencesThatFit =
          overrides.scheduling === "static"
            ? Math.floor(core.kvCacheSize.maxTokens / maxModelLen)
            : Math.floor(core.kvCacheSize.numBlocks / meanBlocks);
        return { ...result, maxNumSeqs: overrides.maxNumSeqs, sequencesThatFit, kvCacheSize: core.kvCacheSize };
      } finally {
        core.close();
      }
    };
    const timelines = [
      { name: "static", timeline: emptyTimeline() },
      { name: "continuous", timeline: emptyTimeline() },
    ];
    const staticRun = await run("static", requests, { scheduling: "static", maxNumSeqs }, timelines[0]!.timeline);
    const continuousRun = await run(
      "continuous",
      requests,
      { scheduling: "continuous", maxNumSeqs: continuousMaxNumSeqs },
      timelines[1]!.timeline,
    );
    const overhead = schedulerOverhead(options.schedulerRequests, 200);
    const prefixOn = await run("prefix-caching-on", prefixRequests, {
      scheduling: "continuous",
      maxNumSeqs: continuousMaxNumSeqs,
      enablePrefixCaching: true,
    });
    const prefixOff = await run("prefix-caching-off", prefixRequests, {
      scheduling: "continuous",
      maxNumSeqs: continuousMaxNumSeqs,
      enablePrefixCaching: false,
    });
    const throughputRatio = continuousRun.outputTokensPerSecond / staticRun.outputTokensPerSecond;

    console.log(`${model.name} on ${backend.description}, ${model.weights.dtype} weights`);
    console.log(
      `${numPrompts} requests, input ${input.low}-${input.high}, output ${output.low}-${output.high} tokens, max-num-seqs ${maxNumSeqs} static / ` +
        `${continuousMaxNumSeqs} continuous, max-model-len ${maxModelLen}, KV cache ${(staticRun.kvCacheSize.bytes / 2 ** 20).toFixed(1)} MiB`,
    );
    const row = (name: string, r: RunResult & { sequencesThatFit: number }) => [
      name,
      fixed(r.outputTokensPerSecond, 1),
      fixed(r.requestsPerSecond),
      fixed(r.latency.mean, 3),
      fixed(r.latency.p99, 3),
      fixed(r.timeToFirstToken.mean, 3),
      percent(r.kvWasteRatio),
      String(r.maxConcurrentRequests),
      String(r.sequencesThatFit),
      `${fixed(r.schedulerMsPerStep, 3)} (${percent(r.schedulerShareOfStep)})`,
    ];
    console.log(
      formatTable([
        [
          "policy",
          "out tok/s",
          "req/s",
          "mean lat s",
          "p99 lat s",
          "mean TTFT s",
          "KV waste",
          "most running",
          "fit in KV",
          "sched ms/step",
        ],
        row("static", staticRun),
        row("continuous", continuousRun),
      ]),
    );
    console.log(`continuous / static output throughput: ${fixed(throughputRatio)}x`);
    console.log("KV slots allocated over time (same time scale, full height = the whole cache):");
    for (const line of kvSparklines(timelines)) console.log(line);
    console.log(
      `scheduler alone, ${overhead.runningRequests} running requests: ${fixed(overhead.msPerStep, 3)} ms per step`,
    );
    console.log(`shared prefix of ${prefixLen} tokens + up to ${suffixLen} own:`);
    console.log(
      formatTable([
        ["prefix caching", "hit rate", "out tok/s", "total tok/s", "mean TTFT s"],
        ...(
          [
            ["on", prefixOn],
            ["off", prefixOff],
          ] as const
        ).map(([name, r]) => [
          name,
          percent(r.prefixCacheHitRate),
          fixed(r.outputTokensPerSecond, 1),
          fixed(r.totalTokensPerSecond, 1),
          fixed(r.timeToFirstToken.mean, 3),
        ]),
      ]),
    );

    if (options.plot !== undefined) writePlot(options.plot, "bench compare", compareChart(timelines));
    await writeReport(options.outputJson, {
      command: "bench compare",
      model: model.name,
      device: deviceOf(backend),
      configuration: {
        numPrompts,
        inputLen: [input.low, input.high],
        outputLen: [output.low, output.high],
        maxNumSeqs,
        continuousMaxNumSeqs,
        maxModelLen,
        kvCacheMemory,
        prefixLen,
        suffixLen,
        seed: coreOptions.seed,
        dtype: model.weights.dtype,
        engine: engineConfig(coreOptions),
      },
      results: {
        static: staticRun,
        continuous: continuousRun,
        throughputRatio,
        schedulerOverhead: overhead,
        prefixCaching: {
          on: prefixOn,
          off: prefixOff,
          throughputRatio: prefixOn.totalTokensPerSecond / prefixOff.totalTokensPerSecond,
        },
      },
    });
  } finally {
    bench.close();
  }
}
