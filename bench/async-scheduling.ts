// Async scheduling (--async-scheduling) against steps in turns, on the CPU or CUDA: decode
// milliseconds per step at each batch size, the two modes alternating on one loaded model (random
// weights of a real model's shape), and the host time per step that stays exposed: a step's time
// beyond the device's own work. The device's own time is what a decode step spends in the graph's
// replay and in waiting for its tokens when it runs in turns (the CPU replays a graph before
// vt_graph_launch returns; CUDA returns at once and the download waits).
//   bun bench/async-scheduling.ts [--model bench/models/smollm2-135m] [--device cpu|cuda]
//                                 [--threads N] [--batch-sizes 1,8,64] [--input-len 32]
//                                 [--output-len 96] [--rounds 3] [--output-json FILE]
import { parseArgs } from "node:util";
import { Graph } from "../src/backend/graph.ts";
import { deviceOf, fixed, formatTable, writeReport } from "../src/bench/report.ts";
import { randomRequests } from "../src/bench/workload.ts";
import { EngineCore } from "../src/engine/engine-core.ts";
import { openModelOnDevice } from "../src/engine/model-on-device.ts";
import { RequestGenerator } from "../src/engine/random.ts";
import { Request } from "../src/engine/request.ts";
import { SamplingParams } from "../src/engine/sampling-params.ts";

const { values: options } = parseArgs({
  options: {
    model: { type: "string", default: "bench/models/smollm2-135m" },
    device: { type: "string", default: "cpu" },
    threads: { type: "string", default: "0" },
    "batch-sizes": { type: "string", default: "1,8,64" },
    "input-len": { type: "string", default: "32" },
    "output-len": { type: "string", default: "96" },
    rounds: { type: "string", default: "3" },
    "output-json": { type: "string" },
  },
});
const batchSizes = options["batch-sizes"]!.split(",").map(Number);
const inputLen = Number(options["input-len"]);
const outputLen = Number(options["output-len"]);
const rounds = Number(options.rounds);
const positive = (value: number) => Number.isInteger(value) && value >= 1;
if (!batchSizes.every(positive)) throw new Error("--batch-sizes must be positive integers separated by commas");
if (![inputLen, outputLen, rounds].every(positive))
  throw new Error("--input-len, --output-len and --rounds must be positive integers");
if (options.device !== "cpu" && options.device !== "cuda") throw new Error("--device must be cpu or cuda");

const bench = await openModelOnDevice({
  model: options.model,
  loadFormat: "dummy",
  dtype: "bfloat16",
  device: options.device,
  numThreads: Number(options.threads),
});

// The device's own time: every graph replay and every download, timed where they are called.
let deviceMs = 0;
const timed = <F extends (...args: never[]) => unknown>(call: F): F =>
  function (this: unknown, ...args: Parameters<F>) {
    const started = performance.now();
    try {
      return call.apply(this, args);
    } finally {
      deviceMs += performance.now() - started;
    }
  } as F;
Graph.prototype.launch = timed(Graph.prototype.launch);
bench.backend.download = timed(bench.backend.download);

interface Run {
  /** Median wall time of the steps in which every request decodes one token. */
  stepMs: number;
  /** Median of the same steps' replay and download time. */
  deviceMs: number;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** One batch generated to the end in one mode; a first, untimed one captures the graphs. */
async function run(batch: number, asyncScheduling: boolean, random: RequestGenerator): Promise<Run> {
  const core = EngineCore.create(bench.backend, bench.model, {
    asyncScheduling,
    maxNumSeqs: batch,
    maxModelLen: inputLen + outputLen,
    kvCacheMemory: 512 * 2 ** 20,
  });
  try {
    let result: Run = { stepMs: 0, deviceMs: 0 };
    for (const label of ["warmup", "timed"]) {
      const requests = randomRequests(
        random,
        batch,
        { low: inputLen, high: inputLen },
        { low: outputLen, high: outputLen },
        bench.model.config.vocabSize,
      );
      for (const [i, request] of requests.entries()) {
        core.addRequest(
          new Request({
            requestId: `${label}-${i}`,
            promptTokenIds: request.promptTokenIds,
            samplingParams: new SamplingParams({ temperature: 0, maxTokens: request.outputLen, ignoreEos: true }),
          }),
        );
      }
      const steps: number[] = [];
      const device: number[] = [];
      while (core.hasUnfinishedRequests()) {
        const deviceBefore = deviceMs;
        const started = performance.now();
        await core.step();
        if (core.lastStep?.numScheduledTokens !== batch || core.lastStep.numRequests !== batch) continue;
        steps.push(performance.now() - started);
        device.push(deviceMs - deviceBefore);
      }
      result = { stepMs: median(steps), deviceMs: median(device) };
    }
    return result;
  } finally {
    core.close();
  }
}

const device = deviceOf(bench.backend);
const description = bench.backend.description;
const rows: {
  batch: number;
  inTurnsMs: number;
  asyncMs: number;
  deviceMs: number;
  exposedInTurnsMs: number;
  exposedAsyncMs: number;
  inTurnsOverAsync: number;
}[] = [];
try {
  for (const batch of batchSizes) {
    const random = new RequestGenerator(batch);
    const inTurns: Run[] = [];
    const async: number[] = [];
    // Alternating, each round's order reversed, so the machine's drift falls on both alike.
    for (let round = 0; round < rounds; round++) {
      for (const asyncScheduling of round % 2 === 0 ? [false, true] : [true, false]) {
        const result = await run(batch, asyncScheduling, random);
        if (asyncScheduling) async.push(result.stepMs);
        else inTurns.push(result);
      }
    }
    const inTurnsMs = median(inTurns.map((r) => r.stepMs));
    const asyncMs = median(async);
    const device = median(inTurns.map((r) => r.deviceMs));
    rows.push({
      batch,
      inTurnsMs,
      asyncMs,
      deviceMs: device,
      exposedInTurnsMs: inTurnsMs - device,
      exposedAsyncMs: asyncMs - device,
      inTurnsOverAsync: median(inTurns.map((r, i) => r.stepMs / async[i]!)),
    });
  }
} finally {
  bench.close();
}

console.log(
  `${bench.model.name} on ${description}: decode steps, ${inputLen} prompt + ${outputLen} output tokens per request, median of ${rounds} alternating rounds`,
);
console.log(
  formatTable([
    ["batch", "in turns ms/step", "async ms/step", "in turns / async", "device ms", "host exposed, in turns", "async"],
    ...rows.map((r) => [
      String(r.batch),
      fixed(r.inTurnsMs, 3),
      fixed(r.asyncMs, 3),
      fixed(r.inTurnsOverAsync, 3),
      fixed(r.deviceMs, 3),
      fixed(r.exposedInTurnsMs, 3),
      fixed(r.exposedAsyncMs, 3),
    ]),
  ]),
);
await writeReport(options["output-json"], {
  command: "bench/async-scheduling.ts",
  model: bench.model.name,
  device,
  configuration: { inputLen, outputLen, rounds, threads: Number(options.threads) },
  results: rows,
});
