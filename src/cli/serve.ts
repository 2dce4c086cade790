// `vllm-ts serve`: the OpenAI-compatible HTTP server over one engine. SIGINT and SIGTERM stop it
// gracefully: no new connections, in-flight requests aborted (their blocks freed), the engine
// shut down, exit 0.
import { existsSync, readFileSync } from "node:fs";
import { defineCommand } from "citty";
import { AsyncEngine } from "../engine/async-engine.ts";
import { createApp } from "../server/app.ts";
import { Metrics } from "../server/metrics.ts";
import { bytes, coreOptions, engineArgs, integer, modelArgs, UsageError, type EngineArgs, type ModelArgs } from "./engine-args.ts";
import { logger } from "./logger.ts";

const mib = (size: number) => `${(size / 2 ** 20).toFixed(1)} MiB`;

function readChatTemplate(path: string | undefined): string | null {
  if (path === undefined) return null;
  if (!existsSync(path)) throw new UsageError(`--chat-template: no file ${path}`);
  return readFileSync(path, "utf8");
}

export default defineCommand({
  meta: { name: "serve", description: "Serve a model over an OpenAI-compatible HTTP API" },
  args: {
    ...modelArgs,
    ...engineArgs,
    host: { type: "string", default: "127.0.0.1", description: "Address to listen on (0.0.0.0 for every interface)" },
    port: { type: "string", default: "8000", description: "Port to listen on (0 picks a free one)" },
    "served-model-name": { type: "string", description: "The name clients use in `model` (default: the model directory's name)" },
    "api-key": { type: "string", description: "Require `Authorization: Bearer <key>` on /v1 routes (default: $VLLM_API_KEY)" },
    "max-pending-requests": { type: "string", default: "1024", description: "Queued + running requests past which new ones get 503" },
    "max-request-body": { type: "string", default: "8MiB", description: "Largest request body accepted (413 past it)" },
    "chat-template": { type: "string", description: "A Jinja chat template file, instead of the tokenizer's" },
  },
  async run({ args }) {
    let engine: AsyncEngine | null = null;
    try {
      const options = coreOptions(args as ModelArgs & EngineArgs);
      const port = integer("port", args.port, 0);
      if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
      const maxPendingRequests = integer("max-pending-requests", args["max-pending-requests"], 1);
      const maxBodyBytes = bytes("max-request-body", args["max-request-body"]);
      const chatTemplate = readChatTemplate(args["chat-template"]);

      const started = performance.now();
      engine = await AsyncEngine.start(options);
      const { info, source } = engine;
      const servedModelName = args["served-model-name"] ?? source.name;
      logger.info(`device: ${info.device} (${info.deviceName})`);
      logger.info(`model ${source.name} (${source.config.architecture}, ${mib(info.weightBytes)} of weights) loaded in ${((performance.now() - started) / 1000).toFixed(2)} s`);
      logger.info(`KV cache: ${info.kvCacheSize.numBlocks} blocks of ${info.kvCacheSize.blockSize} tokens (${info.kvCacheSize.maxTokens} tokens, ${mib(info.kvCacheSize.bytes)}); max model len ${info.config.maxModelLen}`);

      const apiKey = args["api-key"] ?? process.env.VLLM_API_KEY ?? null;
      const context = { engine, metrics: new Metrics(servedModelName), servedModelName, apiKey, maxPendingRequests, maxBodyBytes, chatTemplate };
      const server = Bun.serve({
        hostname: args.host,
        port,
        fetch: createApp(context, (error) => logger.error("request failed:", error)),
        // Generation can take longer than any idle limit between a request and its first byte.
        idleTimeout: 0,
        // Bun's own limit would answer 413 with no body: the app enforces --max-request-body
        // itself, reading bodies as streams, so that the client gets OpenAI's error shape.
        maxRequestBodySize: Number.MAX_SAFE_INTEGER,
      });
      logger.success(`serving ${servedModelName} at http://${server.hostname}:${server.port}/v1${apiKey ? " (API key required)" : ""}`);

      const running = engine;
      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        logger.info(`${signal}: shutting down`);
        void server.stop();
        await running.shutdown();
        await server.stop(true);
        process.exit(0);
      };
      process.on("SIGINT", () => void stop("SIGINT"));
      process.on("SIGTERM", () => void stop("SIGTERM"));
    } catch (error) {
      logger.error(error instanceof Error ? error.message : String(error));
      await engine?.shutdown();
      process.exit(1);
    }
  },
});
