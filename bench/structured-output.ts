// The cost of structured outputs: decode throughput at batch 1, 8 and 32 with and without a
// JSON-schema constraint on every request, in the same run, on a real model's shape with random
// weights (vLLM's `--load-format dummy`) and the Qwen tokenizer's 151k-token vocabulary. The
// constraint's schema asks for a fixed number of fixed-length strings, so the constrained
// requests generate about as many tokens as the free ones; the free ones ignore EOS.
//   bun bench/structured-output.ts [--model bench/models/qwen2.5-0.5b] [--output-len 64] [--output-json FILE]
import { parseArgs } from "node:util";
import { runRequests } from "../src/bench/engine/offline.ts";
import { deviceOf, fixed, formatTable, writeReport } from "../src/bench/report.ts";
import { randomRequests } from "../src/bench/workload.ts";
import type { CoreOptions } from "../src/engine/core-protocol.ts";
import { EngineCore } from "../src/engine/engine-core.ts";
import { openModelOnDevice } from "../src/engine/model-on-device.ts";
import { RequestGenerator } from "../src/engine/random.ts";
import type { StructuredOutputs } from "../src/engine/structured-output/structured-outputs.ts";
import { DEMO_MODEL_NAME } from "../src/model/demo.ts";
import { loadModelTokenizer } from "../src/model/load-tokenizer.ts";

const { values: options } = parseArgs({
  options: {
    model: { type: "string", default: "bench/models/qwen2.5-0.5b" },
    "output-len": { type: "string", default: "64" },
    "input-len": { type: "string", default: "32" },
    "output-json": { type: "string" },
    device: { type: "string", default: "auto" },
  },
});
const outputLen = Number(options["output-len"]);
const inputLen = Number(options["input-len"]);
const batchSizes = [1, 8, 32];

/** About outputLen tokens of JSON: a list of short fixed-length strings. */
const constraint: StructuredOutputs = {
  json: {
    type: "array",
    items: { type: "string", minLength: 6, maxLength: 6 },
    minItems: Math.ceil(outputLen / 4),
    maxItems: Math.ceil(outputLen / 4),
  },
};

const bench = await openModelOnDevice({
  model: options.model,
  loadFormat: "dummy",
  device: options.device as CoreOptions["device"],
});
// The benchmark models are config-only: the embedded Qwen tokenizer stands in for theirs.
const tokenizer = await loadModelTokenizer(bench.model, DEMO_MODEL_NAME);
const rows: Record<string, number | string>[] = [];
try {
  for (const batch of batchSizes) {
    const figures: Record<string, number> = {};
    for (const constrained of [false, true]) {
      const core = EngineCore.create(bench.backend, bench.model, { maxNumSeqs: batch }, async () =>
        tokenizer.grammarVocab(),
      );
      try {
        const random = new RequestGenerator(batch);
        const requests = () =>
          randomRequests(random, batch, { low: inputLen, high: inputLen }, { low: outputLen, high: outputLen }, 1000);
        const eosTokenIds = bench.model.generationConfig.eosTokenIds ?? bench.model.config.eosTokenIds;
        const run = { progress: false, ...(constrained ? { structuredOutputs: constraint, eosTokenIds } : {}) };
        // The first run compiles the grammar and warms the caches; the second is measured.
        await runRequests(core, requests(), "warmup", run);
        const before = { ...core.structuredOutputs.maskTime };
        const result = await runRequests(core, requests(), "measured", run);
        const masks = core.structuredOutputs.maskTime.count - before.count;
        figures[constrained ? "constrained" : "free"] = result.outputTokensPerSecond;
        if (constrained) {
          figures.maskMsPerToken = masks > 0 ? (core.structuredOutputs.maskTime.totalMs - before.totalMs) / masks : 0;
          figures.constrainedTokens = result.outputTokens / batch;
        }
      } finally {
        core.close();
      }
    }
    rows.push({
      batch,
      freeTokensPerSecond: figures.free!,
      constrainedTokensPerSecond: figures.constrained!,
      ratio: figures.constrained! / figures.free!,
      maskMsPerToken: figures.maskMsPerToken!,
      constrainedOutputTokensPerRequest: figures.constrainedTokens!,
    });
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
  configuration: { inputLen, outputLen, batchSizes, constraint },
  results: rows,
});
