// The cost of structured outputs: decode throughput at batch 1, 8 and 32 with and without a
// JSON-schema constraint on every request, in the same run, on a real model's shape with random
// weights (vLLM's `--load-format dummy`) and the Qwen tokenizer's 151k-token vocabulary. The
// constraint's schema asks for a fixed number of fixed-length strings, so the constrained
// requests generate about as many tokens as the free ones; the free ones ignore EOS. Free and
// constrained runs alternate on one engine; each figure is the median over the pairs.
//   bun bench/structured-output.ts [--model bench/models/qwen2.5-0.5b] [--output-len 64] [--pairs 3]
//     [--output-json FILE]
import { parseArgs } from "node:util";
import { runRequests } from "../src/bench/engine/offline.ts";
import { deviceOf, fixed, formatTable, writeReport } from "../src/bench/report.ts";
import { benchmarkSchema } from "../src/bench/structured-output.ts";
import { randomRequests } from "../src/bench/workload.ts";
import type { CoreOptions } from "../src/engine/core-protocol.ts";
import { EngineCore } from "../src/engine/engine-core.ts";
import { openModelOnDevice } from "../src/engine/model-on-device.ts";
import { RequestGenerator } from "../src/engine/random.ts";
import type { StructuredOutputs } from "../src/engine/structured-output/structured-outputs.ts";
import { DEMO_MODEL_NAME } from "../src/model/demo.ts";

const { values: options } = parseArgs({
  options: {
    model: { type: "string", default: "bench/models/qwen2.5-0.5b" },
    "output-len": { type: "string", default: "64" },
    "input-len": { type: "string", default: "32" },
    "output-json": { type: "string" },
    device: { type: "string", default: "auto" },
    pairs: { type: "string", default: "3" },
  },
});
const pairs = Number(options.pairs);
const outputLen = Number(options["output-len"]);
const inputLen = Number(options["input-len"]);
const batchSizes = [1, 8, 32];

const constraint: StructuredOutputs = { json: benchmarkSchema(outputLen) };

const bench = await openModelOnDevice({
  model: options.model,
  loadFormat: "dummy",
  device: options.device as CoreOptions["device"],
});
const grammarVocab = { dir: null, ggufFile: null, tokenizer: DEMO_MODEL_NAME };
const rows: Record<string, number | string>[] = [];
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
try {
  for (const batch of batchSizes) {
    // The benchmark models are config-only: the embedded Qwen tokenizer stands in for theirs.
    const core = EngineCore.create(bench.backend, bench.model, { maxNumSeqs: batch }, grammarVocab);
    try {
      const random = new RequestGenerator(batch);
      const requests = () =>
        randomRequests(random, batch, { low: inputLen, high: inputLen }, { low: outputLen, high: outputLen }, 1000);
      const eosTokenIds = bench.model.generationConfig.eosTokenIds ?? bench.model.config.eosTokenIds;
      const free = { progress: false };
      const constrained = { progress: false, structuredOutputs: constraint, eosTokenIds };
      // Warm-up runs compile the grammar and warm the caches; then free and constrained runs
      // alternate, so the machine's drift falls on both alike, and each pair gives a ratio.
      await runRequests(core, requests(), "warmup-free", free);
      await runRequests(core, requests(), "warmup-json", constrained);
      const freeRates: number[] = [];
      const constrainedRates: number[] = [];
      const before = { ...core.structuredOutputs.maskTime };
      let constrainedTokens = 0;
      for (let pair = 0; pair < pairs; pair++) {
        freeRates.push((await runRequests(core, requests(), `free-${pair}`, free)).outputTokensPerSecond);
        const result = await runRequests(core, requests(), `json-${pair}`, constrained);
        constrainedRates.push(result.outputTokensPerSecond);
        constrainedTokens += result.outputTokens;
      }
      const masks = core.structuredOutputs.maskTime.count - before.count;
      rows.push({
        batch,
        freeTokensPerSecond: median(freeRates),
        constrainedTokensPerSecond: median(constrainedRates),
        ratio: median(freeRates.map((rate, i) => constrainedRates[i]! / rate)),
        maskMsPerToken: masks > 0 ? (core.structuredOutputs.maskTime.totalMs - before.totalMs) / masks : 0,
        constrainedOutputTokensPerRequest: constrainedTokens / (pairs * batch),
      });
    } finally {
      core.close();
    }
  }
} finally {
  bench.close();
}

console.log(`${bench.model.name} on ${bench.backend.name} (${bench.backend.deviceName}), ${outputLen} output tokens`);
console.log(
  formatTable([
    ["batch", "free tok/s", "JSON-schema tok/s", "ratio", "mask ms/token", "constrained tokens/request"],
    ...rows.map((r) => [
      String(r.batch),
      fixed(r.freeTokensPerSecond as number, 1),
      fixed(r.constrainedTokensPerSecond as number, 1),
      fixed(r.ratio as number, 3),
      fixed(r.maskMsPerToken as number, 3),
      fixed(r.constrainedOutputTokensPerRequest as number, 1),
    ]),
  ]),
);
await writeReport(options["output-json"], {
  command: "bench/structured-output.ts",
  model: options.model,
  device: deviceOf(bench.backend),
  configuration: { inputLen, outputLen, batchSizes, pairs, constraint },
  results: rows,
});
