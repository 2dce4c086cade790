// `vllm-ts generate`: continue one prompt on one model and stream the text to stdout, so a model
// can be tried before a server runs. One sequence in a contiguous run of cache blocks.
import { defineCommand } from "citty";
import type { Backend } from "../backend/backend.ts";
import { ModelForward, type ForwardBatch } from "../model/forward.ts";
import { KvCacheTensors } from "../model/kv-cache-tensors.ts";
import { loadModel, type LoadedModel } from "../model/load-model.ts";
import { IncrementalDetokenizer } from "../model/tokenizer.ts";
import { integer, loadOptions, modelArgs, number, openBackend, UsageError, type ModelArgs } from "./engine-args.ts";
import { logger } from "./logger.ts";

const BLOCK_SIZE = 16;

/** Draws from softmax(logits / temperature) with a seeded generator (mulberry32). */
function sampler(seed: number) {
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return (logits: Float32Array, temperature: number): number => {
    let max = -Infinity;
    for (const v of logits) max = Math.max(max, v);
    const weights = logits.map((v) => Math.exp((v - max) / temperature));
    let remaining = random() * weights.reduce((a, b) => a + b, 0);
    for (let i = 0; i < weights.length; i++) {
      remaining -= weights[i]!;
      if (remaining <= 0) return i;
    }
    return weights.length - 1;
  };
}

/** Tokens of one sequence: prefill the prompt, then decode one token per step. */
async function generate(backend: Backend, model: LoadedModel, prompt: string, maxTokens: number, temperature: number, seed: number) {
  const { config, tokenizer } = model;
  const promptIds = tokenizer.encode(prompt);
  if (promptIds.length === 0) throw new UsageError("the prompt encodes to no tokens");
  const maxLen = Math.min(config.maxPositionEmbeddings, promptIds.length + maxTokens);
  if (promptIds.length >= config.maxPositionEmbeddings) {
    throw new UsageError(`the prompt has ${promptIds.length} tokens; the model's maximum length is ${config.maxPositionEmbeddings}`);
  }
  const numBlocks = Math.ceil(maxLen / BLOCK_SIZE);
  const kvCache = KvCacheTensors.allocate(backend, config, numBlocks, BLOCK_SIZE, model.weights.dtype);
  const forward = new ModelForward(backend, config, model.weights, kvCache, model.actDtype);
  const blockTables = Int32Array.from({ length: numBlocks }, (_, i) => i);
  const eos = new Set(model.generationConfig.eosTokenIds ?? config.eosTokenIds);
  const detokenizer = new IncrementalDetokenizer(tokenizer, { skipSpecialTokens: true, promptIds });
  const draw = sampler(seed);
  const started = performance.now();
  let firstTokenAt = 0;
  let generated = 0;
  try {
    let newIds = promptIds;
    let cached = 0;
    while (generated < maxTokens && cached + newIds.length <= maxLen) {
      const positions = Int32Array.from(newIds, (_, i) => cached + i);
      const batch: ForwardBatch = {
        tokenIds: Int32Array.from(newIds),
        positions,
        slotMapping: positions,
        queryStartLoc: Int32Array.of(0, newIds.length),
        seqLens: Int32Array.of(cached + newIds.length),
        blockTables,
        maxBlocksPerSeq: numBlocks,
        logitsIndices: Int32Array.of(newIds.length - 1),
      };
      const next = temperature === 0 ? forward.greedy(batch)[0]! : draw(forward.logits(batch), temperature);
      if (generated === 0) firstTokenAt = performance.now();
      cached += newIds.length;
      generated++;
      if (eos.has(next)) break;
      process.stdout.write(detokenizer.push(next));
      newIds = [next];
    }
    process.stdout.write(detokenizer.flush() + "\n");
  } finally {
    forward.free();
    kvCache.free();
  }
  const decodeSeconds = (performance.now() - firstTokenAt) / 1000;
  logger.info(
    `${promptIds.length} prompt tokens, ${generated} generated; time to first token ${((firstTokenAt - started) / 1000).toFixed(3)} s, ` +
      `decode ${generated > 1 ? ((generated - 1) / decodeSeconds).toFixed(1) : "-"} tokens/s`,
  );
}

export default defineCommand({
  meta: { name: "generate", description: "Continue a prompt and print the text (greedy at temperature 0)" },
  args: {
    ...modelArgs,
    prompt: { type: "string", required: true, description: "The text to continue" },
    "max-tokens": { type: "string", default: "64", description: "Most tokens to generate" },
    temperature: { type: "string", default: "0", description: "Sampling temperature (0 = greedy)" },
  },
  async run({ args }) {
    try {
      const options = loadOptions(args as ModelArgs);
      const maxTokens = integer("max-tokens", args["max-tokens"], 1);
      const temperature = number("temperature", args.temperature, 0);
      const backend = await openBackend(args as ModelArgs);
      logger.info(`device: ${backend.name} (${backend.deviceName})`);
      const loadStart = performance.now();
      const model = await loadModel(backend, args.model, options);
      logger.info(`model ${model.name} (${model.config.architecture}, ${(model.weights.totalBytes / 2 ** 20).toFixed(1)} MiB of ${model.weights.dtype} weights) loaded in ${((performance.now() - loadStart) / 1000).toFixed(2)} s`);
      await generate(backend, model, args.prompt, maxTokens, temperature, options.seed);
      model.weights.free();
      backend.close();
    } catch (error) {
      logger.error(error instanceof Error ? error.message : String(error));
      process.exit(1);
    }
  },
});
