// `vllm-ts bench compare`: the seed document's experiment, in one process on the same requests
// and the same KV memory: continuous batching with paged KV against the two static baselines
// (whole batches, KV reserved for max-model-len per sequence): Hugging Face generate()'s static
// batching, and static-drop, which stops and returns each row as it finishes. Then the
// scheduler's time per step alone with many running requests, and a shared-prefix workload with
// prefix caching on and off.
import type { CoreOptions } from "../../engine/core-protocol.ts";
import { EngineCore } from "../../engine/engine-core.ts";
import { KVCacheManager } from "../../engine/kv-cache-manager.ts";
import { openModelOnDevice } from "../../engine/model-on-device.ts";
import type { EngineConfig } from "../../engine/options.ts";
import { RequestGenerator } from "../../engine/random.ts";
import { Request } from "../../engine/request.ts";
import { SamplingParams } from "../../engine/sampling-params.ts";
import { Scheduler } from "../../engine/scheduler.ts";
import { KvCacheTensors } from "../../worker/kv-cache-tensors.ts";
import { compareChart, kvSparklines } from "../plot/compare.ts";
import { writePlot } from "../plot/svg.ts";
import { deviceOf, fixed, formatTable, percent, writeReport } from "../report.ts";
import { type BenchRequest, type LengthRange, randomRequests, randomTokens } from "../workload.ts";
import { fastestRun, interleavedRounds } from "./interleaved-rounds.ts";
import { emptyTimeline, engineConfig, type RunResult, type RunTimeline, runRequests } from "./offline.ts";

/** The batching policies compared, in the order of the tables and charts. */
const POLICIES = ["continuous", "static", "static-drop"] as const satisfies readonly EngineConfig["scheduling"][];
type Policy = (typeof POLICIES)[number];

export interface CompareOptions {
  /** The model and engine; maxNumSeqs caps the static baselines and, with maxModelLen, sizes the default KV budget. */
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
  /** Runs of each policy, interleaved round by round (see interleaved-rounds.ts). */
  rounds: number;
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
      overrides: { scheduling: EngineConfig["scheduling"]; maxNumSeqs: number; enablePrefixCaching?: boolean },
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
          overrides.scheduling === "continuous"
            ? Math.floor(core.kvCacheSize.numBlocks / meanBlocks)
            : Math.floor(core.kvCacheSize.maxTokens / maxModelLen);
        return { ...result, maxNumSeqs: overrides.maxNumSeqs, sequencesThatFit, kvCacheSize: core.kvCacheSize };
      } finally {
        core.close();
      }
    };
    const policyRuns = await interleavedRounds(POLICIES, options.rounds, async (name) => {
      const timeline = emptyTimeline();
      const cap = name === "continuous" ? continuousMaxNumSeqs : maxNumSeqs;
      return { timeline, result: await run(name, requests, { scheduling: name, maxNumSeqs: cap }, timeline) };
    });
    const runsOf = (name: Policy) => policyRuns.get(name)!;
    // Each policy's figures and chart are those of its fastest run.
    const chosenRun = (name: Policy) => fastestRun(runsOf(name), (run) => run.result.elapsedSeconds);
    const timelines = POLICIES.map((name) => ({ name, timeline: chosenRun(name).timeline }));
    const continuousRun = chosenRun("continuous").result;
    const staticRun = chosenRun("static").result;
    const staticDropRun = chosenRun("static-drop").result;
    const runs = [continuousRun, staticRun, staticDropRun];
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
    // Continuous batching's output throughput over each baseline's.
    const throughputRatio = {
      static: continuousRun.outputTokensPerSecond / staticRun.outputTokensPerSecond,
      staticDrop: continuousRun.outputTokensPerSecond / staticDropRun.outputTokensPerSecond,
    };

    console.log(`${model.name} on ${backend.description}, ${model.weights.dtype} weights`);
    console.log(
      `${numPrompts} requests, input ${input.low}-${input.high}, output ${output.low}-${output.high} tokens, max-num-seqs ${maxNumSeqs} static / ` +
        `${continuousMaxNumSeqs} continuous, max-model-len ${maxModelLen}, KV cache ${(staticRun.kvCacheSize.bytes / 2 ** 20).toFixed(1)} MiB`,
    );
    const row = (name: string, r: RunResult & { sequencesThatFit: number }) => [
      name,
      fixed(r.outputTokensPerSecond, 1),
      fixed(r.requestsPerSecond),
      fixed(r.elapsedSeconds, 2),
      fixed(r.cpuSeconds, 2),
      fixed(r.timeToFirstToken.mean, 3),
      fixed(r.timeToFirstToken.p99, 3),
      fixed(r.latency.mean, 3),
      fixed(r.latency.p99, 3),
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
          "elapsed s",
          "CPU s",
          "mean TTFT s",
          "p99 TTFT s",
          "mean E2E s",
          "p99 E2E s",
          "KV waste",
          "most running",
          "fit in KV",
          "sched ms/step",
        ],
        ...runs.map((r, i) => row(POLICIES[i]!, r)),
      ]),
    );
    console.log(
      `continuous / static output throughput: ${fixed(throughputRatio.static)}x; ` +
        `continuous / static-drop: ${fixed(throughputRatio.staticDrop)}x`,
    );
    if (options.rounds > 1) {
      const elapsed = POLICIES.map(
        (name) =>
          `${name} ${runsOf(name)
            .map((run) => fixed(run.result.elapsedSeconds))
            .join("/")}`,
      );
      console.log(
        `each policy's fastest of ${options.rounds} interleaved rounds; elapsed s by round: ${elapsed.join(", ")}`,
      );
    }
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
        rounds: options.rounds,
        seed: coreOptions.seed,
        dtype: model.weights.dtype,
        engine: engineConfig(coreOptions),
      },
      results: {
        continuous: continuousRun,
        static: staticRun,
        staticDrop: staticDropRun,
        throughputRatio,
        // Every run's elapsed and CPU seconds, by policy, in round order.
        rounds: Object.fromEntries(
          POLICIES.map((name) => [
            name,
            runsOf(name).map(({ result }) => ({
              elapsedSeconds: result.elapsedSeconds,
              cpuSeconds: result.cpuSeconds,
            })),
          ]),
        ),
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
