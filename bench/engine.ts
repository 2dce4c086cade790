// The seed document's experiment, measured in one process on the same requests: continuous
// batching with paged KV against the static-batching baseline (whole batches, KV pre-allocated
// for max length). Reports output tokens/s and its ratio, mean and p99 latency, and the KV waste
// ratio of each; then the scheduler's own time per step with 256 running requests.
//   bun bench/engine.ts [--model bench/models/smollm2-135m] [--num-requests 200]
//     [--input-len 32:256] [--output-len 16:256] [--max-num-seqs 64] [--continuous-max-num-seqs 256]
//     [--output-json FILE]
import { parseArgs } from "node:util";
import { Backend } from "../src/backend/backend.ts";
import { EngineCore, type EngineConfig } from "../src/engine/engine-core.ts";
import { KVCacheManager } from "../src/engine/kv-cache-manager.ts";
import { RequestGenerator } from "../src/engine/random.ts";
import { Request } from "../src/engine/request.ts";
import { SamplingParams } from "../src/engine/sampling-params.ts";
import { Scheduler } from "../src/engine/scheduler.ts";
import { loadModelWeights, resolveModel } from "../src/model/load-model.ts";

const { values: options } = parseArgs({
  options: {
    model: { type: "string", default: "bench/models/smollm2-135m" },
    "num-requests": { type: "string", default: "200" },
    "input-len": { type: "string", default: "32:256" },
    "output-len": { type: "string", default: "16:256" },
    "max-num-seqs": { type: "string", default: "64" },
    "continuous-max-num-seqs": { type: "string", default: "256" },
    "max-model-len": { type: "string", default: "512" },
    "kv-cache-memory": { type: "string" },
    threads: { type: "string", default: "0" },
    "output-json": { type: "string" },
  },
});

const range = (text: string): [number, number] => {
  const [low, high] = text.split(":").map(Number) as [number, number];
  return [low, high ?? low];
};
const numRequests = Number(options["num-requests"]);
// Static batching reserves max-model-len per sequence, so the shared KV budget (sized for
// max-num-seqs such sequences) caps it there; paged KV lets continuous batching fit more in the
// same memory, up to its own cap.
const maxNumSeqs = Number(options["max-num-seqs"]);
const continuousMaxNumSeqs = Number(options["continuous-max-num-seqs"]);
const maxModelLen = Number(options["max-model-len"]);
const [inputLow, inputHigh] = range(options["input-len"]!);
const [outputLow, outputHigh] = range(options["output-len"]!);

/** The same random workload for both policies. */
function workload(vocabSize: number) {
  const random = new RequestGenerator(42);
  const between = (low: number, high: number) => low + Math.floor(random.nextFloat() * (high - low + 1));
  return Array.from({ length: numRequests }, (_, i) => ({
    id: `r${i}`,
    promptTokenIds: Array.from({ length: between(inputLow, inputHigh) }, () => between(0, vocabSize - 1)),
    outputLength: between(outputLow, outputHigh),
  }));
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};

const backend = await Backend.open({ numThreads: Number(options.threads) });
const source = await resolveModel(options.model);
const model = loadModelWeights(backend, source, { loadFormat: "dummy", dtype: "bfloat16", seed: 1 });
const requests = workload(source.config.vocabSize);
// One KV budget for both: enough for maxNumSeqs sequences of max length, as a static batch needs.
const bytesPerToken = (2 * source.config.numLayers * source.config.numKvHeads * source.config.headDim * 2);
const kvCacheMemory = options["kv-cache-memory"] ? Number(options["kv-cache-memory"]) : maxNumSeqs * maxModelLen * bytesPerToken;

function run(scheduling: EngineConfig["scheduling"]) {
  const core = EngineCore.create(backend, model, {
    scheduling, maxNumSeqs: scheduling === "static" ? maxNumSeqs : continuousMaxNumSeqs, maxModelLen, kvCacheMemory, maxNumBatchedTokens: 2048, blockSize: 16,
  });
  const started = performance.now();
  const firstToken = new Map<string, number>();
  const finished = new Map<string, number>();
  for (const r of requests) {
    core.addRequest(new Request({
      requestId: r.id, promptTokenIds: r.promptTokenIds,
      samplingParams: new SamplingParams({ temperature: 0, maxTokens: r.outputLength, ignoreEos: true }),
    }));
  }
  let steps = 0;
  let outputTokens = 0;
  let wasteWeighted = 0;
  let slotsWeighted = 0;
  let maxRunning = 0;
  let scheduleMs = 0;
  let executeMs = 0;
  while (core.hasUnfinishedRequests()) {
    const outputs = core.step();
    steps++;
    const now = performance.now() - started;
    const stats = core.stats();
    // Waste averaged over time, weighted by what was allocated at each step.
    wasteWeighted += stats.wasteRatio * stats.allocatedSlots;
    slotsWeighted += stats.allocatedSlots;
    maxRunning = Math.max(maxRunning, stats.numRunning);
    scheduleMs += core.lastStepTiming!.scheduleMs;
    executeMs += core.lastStepTiming!.executeMs;
    for (const o of outputs) {
      outputTokens += o.newTokenIds.length;
      if (o.newTokenIds.length > 0 && !firstToken.has(o.requestId)) firstToken.set(o.requestId, now);
      if (o.finished) finished.set(o.requestId, now);
    }
    if (steps % 50 === 0) process.stderr.write(`\r${scheduling}: ${finished.size}/${requests.length} requests finished`);
  }
  process.stderr.write("\n");
  const seconds = (performance.now() - started) / 1000;
  core.close();
  const latencies = [...finished.values()].map((ms) => ms / 1000);
  const ttfts = [...firstToken.values()].map((ms) => ms / 1000);
  return {
    scheduling,
    seconds,
    steps,
    outputTokens,
    outputTokensPerSecond: outputTokens / seconds,
    requestsPerSecond: requests.length / seconds,
    meanLatency: latencies.reduce((a, b) => a + b, 0) / latencies.length,
    p99Latency: percentile(latencies, 99),
    meanTtft: ttfts.reduce((a, b) => a + b, 0) / ttfts.length,
    kvWasteRatio: slotsWeighted > 0 ? wasteWeighted / slotsWeighted : 0,
    maxConcurrentRequests: maxRunning,
    schedulerMsPerStep: scheduleMs / steps,
    schedulerShareOfStep: scheduleMs / (scheduleMs + executeMs),
  };
}

/** Scheduler bookkeeping alone (no model): decode steps with 256 running requests. */
function schedulerOverhead(runningRequests: number, stepsToTime: number) {
  const blockSize = 16;
  const manager = new KVCacheManager({ numBlocks: runningRequests * 64, blockSize, enablePrefixCaching: true });
  const scheduler = new Scheduler({
    kvCacheManager: manager, maxNumBatchedTokens: 8192, maxNumSeqs: runningRequests, maxModelLen: 1024, enableChunkedPrefill: true,
  });
  for (let i = 0; i < runningRequests; i++) {
    scheduler.addRequest(new Request({
      requestId: `s${i}`, promptTokenIds: Array.from({ length: 128 }, (_, j) => (i * 131 + j) % 30000),
      samplingParams: new SamplingParams({ temperature: 0, maxTokens: 900, ignoreEos: true }),
    }));
  }
  const stepOnce = () => {
    const output = scheduler.schedule();
    const sampled = new Map([...output.numScheduledTokens.keys()].map((id) => [id, [7]]));
    scheduler.updateFromOutput(output, sampled);
    return output.numScheduledTokens.size;
  };
  // Admit and prefill everyone (each prompt fits one step's budget), then time decode steps.
  while (scheduler.numWaiting > 0) stepOnce();
  const started = performance.now();
  for (let i = 0; i < stepsToTime; i++) stepOnce();
  return { runningRequests, msPerStep: (performance.now() - started) / stepsToTime };
}

console.log(`${options.model} (${source.config.architecture}) with dummy bf16 weights on ${backend.name} (${backend.deviceName})`);
console.log(`${numRequests} requests, input ${inputLow}-${inputHigh}, output ${outputLow}-${outputHigh} tokens, max-num-seqs ${maxNumSeqs} static / ${continuousMaxNumSeqs} continuous, max-model-len ${maxModelLen}, KV cache ${(kvCacheMemory / 2 ** 20).toFixed(0)} MiB`);
const staticRun = run("static");
const continuousRun = run("continuous");
const overhead = schedulerOverhead(256, 200);

const f = (n: number, d = 2) => n.toFixed(d);
console.log("policy      out tok/s  req/s  mean lat s  p99 lat s  mean TTFT s  KV waste  max running  sched ms/step (share)");
for (const r of [staticRun, continuousRun]) {
  console.log(
    `${r.scheduling.padEnd(10)}  ${f(r.outputTokensPerSecond, 1).padStart(9)}  ${f(r.requestsPerSecond).padStart(5)}  ${f(r.meanLatency).padStart(10)}  ${f(r.p99Latency).padStart(9)}  ${f(r.meanTtft).padStart(11)}  ${(f(100 * r.kvWasteRatio, 1) + "%").padStart(8)}  ${String(r.maxConcurrentRequests).padStart(11)}  ${f(r.schedulerMsPerStep, 3)} (${f(100 * r.schedulerShareOfStep, 1)}%)`,
  );
}
const ratio = continuousRun.outputTokensPerSecond / staticRun.outputTokensPerSecond;
console.log(`continuous / static output throughput: ${f(ratio)}x`);
console.log(`scheduler alone, ${overhead.runningRequests} running requests: ${f(overhead.msPerStep, 3)} ms per step`);

if (options["output-json"]) {
  const result = {
    model: options.model, device: `${backend.name} (${backend.deviceName})`,
    workload: { numRequests, inputLen: [inputLow, inputHigh], outputLen: [outputLow, outputHigh], maxNumSeqs, continuousMaxNumSeqs, maxModelLen, kvCacheMemory },
    static: staticRun, continuous: continuousRun, throughputRatio: ratio, schedulerOverhead: overhead,
  };
  await Bun.write(options["output-json"], JSON.stringify(result, null, 2) + "\n");
}
model.weights.free();
backend.close();
