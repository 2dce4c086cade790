// `vllm-ts generate`: continue one prompt and stream the text to stdout, through the same engine
// the server uses, so a model can be tried from the shell. Logs and a summary go to stderr.
import { defineCommand } from "citty";
import { describeDevice } from "../backend/device-description.ts";
import { AsyncEngine } from "../engine/async-engine.ts";
import { SamplingParams } from "../engine/sampling-params.ts";
import { logger } from "../logger.ts";
import { UsageError } from "../usage-error.ts";
import { coreOptions, engineArgs, integer, modelArgs, number } from "./engine-args.ts";

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

export default defineCommand({
  meta: { name: "generate", description: "Continue a prompt and print the text (greedy at temperature 0)" },
  args: {
    ...modelArgs,
    ...engineArgs,
    prompt: { type: "string", required: true, description: "The text to continue" },
    "max-tokens": { type: "string", default: "64", description: "Most tokens to generate" },
    temperature: { type: "string", default: "0", description: "Sampling temperature (0 = greedy)" },
  },
  async run({ args }) {
    let engine: AsyncEngine | null = null;
    try {
      const options = coreOptions(args);
      const params = new SamplingParams({
        maxTokens: integer("max-tokens", args["max-tokens"], 1),
        temperature: number("temperature", args.temperature, 0),
        seed: options.seed,
      });
      const started = performance.now();
      engine = await AsyncEngine.start(options);
      const { info, source } = engine;
      logger.info(
        `device: ${describeDevice(info.device, info.deviceName, info.cpuKernels)}${info.deviceFallback ? `; not used: ${info.deviceFallback}` : ""}`,
      );
      logger.info(
        `model ${source.name} (${source.config.architecture}, ${mib(info.weightBytes)} of weights) ready in ${((performance.now() - started) / 1000).toFixed(2)} s`,
      );
      logger.info(
        `KV cache: ${info.kvCacheSize.numBlocks} blocks of ${info.kvCacheSize.blockSize} tokens (${info.kvCacheSize.maxTokens} tokens, ${mib(info.kvCacheSize.bytes)})`,
      );
      const promptIds = engine.tokenizer.encode(args.prompt);
      if (promptIds.length === 0) throw new UsageError("the prompt encodes to no tokens");
      const requested = performance.now();
      let firstTokenAt = 0;
      let generated = 0;
      let peak = { blocksUsage: 0, wasteRatio: 0, tokensStored: 0 };
      for await (const delta of engine.generate("generate", promptIds, params)) {
        if (delta.error) throw new UsageError(delta.error);
        if (generated === 0) firstTokenAt = performance.now();
        generated += delta.tokenIds.length;
        process.stdout.write(delta.text);
        const stats = engine.latestStats;
        if (stats && stats.kvCacheUsage >= peak.blocksUsage)
          peak = { blocksUsage: stats.kvCacheUsage, wasteRatio: stats.wasteRatio, tokensStored: stats.tokensStored };
      }
      process.stdout.write("\n");
      const decodeSeconds = (performance.now() - firstTokenAt) / 1000;
      logger.info(
        `${promptIds.length} prompt tokens, ${generated} generated; time to first token ${((firstTokenAt - requested) / 1000).toFixed(3)} s, ` +
          `decode ${generated > 1 ? ((generated - 1) / decodeSeconds).toFixed(1) : "-"} tokens/s`,
      );
      logger.info(
        `KV cache at peak: ${(100 * peak.blocksUsage).toFixed(2)}% of blocks, ${peak.tokensStored} tokens stored, waste ${(100 * peak.wasteRatio).toFixed(1)}%`,
      );
      await engine.shutdown();
    } catch (error) {
      logger.error(error instanceof Error ? error.message : String(error));
      await engine?.shutdown();
      process.exit(1);
    }
  },
});
