// `vllm-ts serve`: the OpenAI-compatible HTTP server over one engine per served model (the
// positional MODEL, --model repeated, or a --models-config file). SIGINT and SIGTERM stop it
// gracefully: no new connections, in-flight requests aborted (their blocks freed), every engine
// shut down, exit 0.
import { existsSync, readFileSync } from "node:fs";
import { type ArgsDef, defineCommand, type ParsedArgs, parseArgs } from "citty";
import type { CoreOptions } from "../engine/core-protocol.ts";
import { GrammarChecker } from "../engine/structured-output/grammar-checker.ts";
import { logger } from "../logger.ts";
import { allowedHosts } from "../server/allowed-hosts.ts";
import { createApp } from "../server/app.ts";
import { withConnectionLimits } from "../server/connections.ts";
import type { ServedModel, ServerContext } from "../server/context.ts";
import { CorsPolicy, parseListFlag } from "../server/cors.ts";
import { ApiError, errorResponse } from "../server/errors.ts";
import { type ModelEntry, parseModelsConfig } from "../server/models-config.ts";
import { REASONING_PARSERS } from "../server/reasoning/reasoning-parser.ts";
import { type ModelSpec, shutdownServedModels, startServedModels } from "../server/served-models.ts";
import { logStatsPeriodically, statsIntervalSeconds } from "../server/stats-log.ts";
import { TOOL_PARSERS } from "../server/tool-parsers/tool-parser.ts";
import { UsageError } from "../usage-error.ts";
import { bytes, coreOptions, engineArgs, integer, modelArgs, number } from "./engine-args.ts";

const mib = (size: number) => `${(size / 2 ** 20).toFixed(1)} MiB`;

/** Bun's longest idle timeout. */
const MAX_IDLE_TIMEOUT_SECONDS = 255;

/** OpenAI's own bound on n, which vLLM's users meet there. */
const DEFAULT_MAX_N = 128;

const serveArgs = {
  ...modelArgs,
  model: { ...modelArgs.model, description: `${modelArgs.model.description}; --model DIR, repeated, serves several` },
  ...engineArgs,
  "gpu-memory-utilization": {
    ...engineArgs["gpu-memory-utilization"],
    description: `${engineArgs["gpu-memory-utilization"].description}; several models share it, equally unless --models-config says otherwise`,
  },
  host: { type: "string", default: "127.0.0.1", description: "Address to listen on (0.0.0.0 for every interface)" },
  "allowed-hosts": {
    type: "string",
    description:
      "Host names the server answers to, comma-separated, * for any; others get 421, a guard against DNS rebinding (default: localhost, 127.0.0.1, [::1] when --host is a loopback address; any otherwise)",
  },
  "allowed-origins": {
    type: "string",
    default: '["*"]',
    description: "Web origins whose pages may call the server (CORS): a JSON list or comma-separated, * for any",
  },
  "allowed-methods": {
    type: "string",
    default: '["*"]',
    description: "HTTP methods cross-origin pages may use (CORS): a JSON list or comma-separated, * for any",
  },
  "allowed-headers": {
    type: "string",
    default: '["*"]',
    description: "Request headers cross-origin pages may send (CORS): a JSON list or comma-separated, * for any",
  },
  "allow-credentials": {
    type: "boolean",
    default: false,
    description: "Let cross-origin pages send cookies and Authorization (CORS)",
  },
  "disable-log-requests": {
    type: "boolean",
    default: false,
    description:
      "No log line per request (by default: id, model, prompt and output tokens, finish reasons, status, time; never the text)",
  },
  "enable-log-requests": {
    type: "boolean",
    default: false,
    description: "A log line per request (the default; vLLM's flag, accepted)",
  },
  "disable-log-stats": {
    type: "boolean",
    default: false,
    description:
      "No stats line every 10 s (VLLM_LOG_STATS_INTERVAL) while busy: running and waiting, tok/s, KV cache and prefix-cache use",
  },
  config: {
    type: "string",
    description:
      "A YAML file of flags, as vLLM's: flag names (kebab or snake case) to values; the command line's own flags win",
  },
  port: { type: "string", default: "8000", description: "Port to listen on (0 picks a free one)" },
  "served-model-name": {
    type: "string",
    description: "The name clients use in `model` (default: the model directory's name); once per model, in order",
  },
  "models-config": {
    type: "string",
    description:
      'A JSON file of the models to serve: [{ "model": DIR, "servedModelName", "chatTemplate", "maxModelLen", "kvCacheMemory", "gpuMemoryUtilization", ...engine options in camelCase }]; the command line gives the defaults',
  },
  "api-key": {
    type: "string",
    description: "Require `Authorization: Bearer <key>` on /v1 routes (default: $VLLM_API_KEY)",
  },
  "max-pending-requests": {
    type: "string",
    default: "1024",
    description:
      "Queued + running sequences (n per prompt) of one model past which new requests get 503; a request asking for more alone gets 400",
  },
  "max-n": {
    type: "string",
    description: `Largest n (samples per prompt) a request may ask for, 400 past it (default: ${DEFAULT_MAX_N}, or --max-pending-requests if lower; at most --max-pending-requests)`,
  },
  "max-request-body": { type: "string", default: "8MiB", description: "Largest request body accepted (413 past it)" },
  "request-body-timeout": {
    type: "string",
    default: "30",
    description: "Seconds a client has to send a request's whole body; past it, 408 and the connection is closed",
  },
  "timeout-keep-alive": {
    type: "string",
    default: "5",
    description: `Seconds an idle connection stays open, between requests or before one arrives (1 to ${MAX_IDLE_TIMEOUT_SECONDS}; closed up to 8 s later, Bun's timer moving in 4 s steps)`,
  },
  "limit-concurrency": {
    type: "string",
    default: "1024",
    description:
      "POSTs in progress at once (streams included) past which another gets 503; with --max-request-body, bounds the memory of bodies in flight",
  },
  "chat-template": {
    type: "string",
    description: "A Jinja chat template file, instead of the tokenizer's (every model's)",
  },
  "enable-auto-tool-choice": {
    type: "boolean",
    description: 'Allow tool_choice "auto": the model decides, --tool-call-parser finds its calls',
  },
  "tool-call-parser": {
    type: "string",
    description: `How tool calls are written in the model's output: ${Object.keys(TOOL_PARSERS).join(", ")}`,
  },
  "reasoning-parser": {
    type: "string",
    description: `Split <think> reasoning into reasoning_content: ${Object.keys(REASONING_PARSERS).join(", ")}`,
  },
} as const satisfies ArgsDef;

type ServeArgs = ParsedArgs<typeof serveArgs>;

/** The server, bound and answering 503 until the app replaces its handler; a clear error if it cannot bind. */
function listen(host: string, port: number, keepAliveTimeoutSeconds: number) {
  try {
    return Bun.serve({
      hostname: host,
      port,
      fetch: () => errorResponse(new ApiError(503, "the server is loading its models; retry in a moment")),
      // Idle connections, and requests before their handler runs; withConnectionLimits lifts it
      // from a request in progress, which its own deadlines govern.
      idleTimeout: keepAliveTimeoutSeconds,
      // Bun's own limit would answer 413 with no body: the app enforces --max-request-body
      // itself, reading bodies as streams, so that the client gets OpenAI's error shape.
      maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    });
  } catch (error) {
    const code = (error as { code?: string }).code;
    const detail = error instanceof Error ? error.message : String(error);
    // Bun reports a host it cannot bind in several ways (EADDRNOTAVAIL, EINVAL, even ENOTTY).
    const why =
      code === "EADDRINUSE"
        ? "the port is in use (another server?)"
        : code === "EACCES"
          ? "permission denied (ports below 1024 need privileges)"
          : `--host is not an address of this machine, or the port is invalid (${detail})`;
    throw new UsageError(`cannot listen on ${host}:${port}: ${why}`);
  }
}

function logRequestsOption(enable: boolean, disable: boolean): boolean {
  if (enable && disable) throw new UsageError("--enable-log-requests and --disable-log-requests contradict each other");
  return !disable;
}

const REPEATABLE = ["model", "served-model-name"] as const;
type Repeated = Record<(typeof REPEATABLE)[number], string[]>;

/**
 * citty keeps only the last value of a repeated option, and reads `--model DIR` as a flag beside
 * a positional DIR; so the repeatable options are taken out of the raw arguments here, in order,
 * and citty parses the rest as usual (the positional MODEL included).
 */
function takeRepeatedOptions(rawArgs: readonly string[]): { repeated: Repeated; rest: string[] } {
  const repeated: Repeated = { model: [], "served-model-name": [] };
  const rest: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i]!;
    const name = REPEATABLE.find((option) => arg === `--${option}` || arg.startsWith(`--${option}=`));
    if (!name) {
      rest.push(arg);
      continue;
    }
    const value = arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : rawArgs[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    repeated[name].push(value);
  }
  return { repeated, rest };
}

function readChatTemplate(option: string, path: string | undefined): string | null {
  if (path === undefined) return null;
  if (!existsSync(path)) throw new UsageError(`${option}: no file ${path}`);
  return readFileSync(path, "utf8");
}

/** A config entry over the command line's options; its utilization share defaults to an equal one. */
function specOfEntry(
  entry: ModelEntry,
  index: number,
  base: CoreOptions,
  equalShare: number,
  chatTemplate: string | null,
): ModelSpec {
  const { servedModelName, chatTemplate: templatePath, kvCacheMemory, gpuMemoryUtilization, ...engineOptions } = entry;
  const where = `--models-config: model ${index}`;
  return {
    options: {
      ...base,
      ...engineOptions,
      kvCacheMemory:
        typeof kvCacheMemory === "string"
          ? bytes(`${where} kvCacheMemory`, kvCacheMemory)
          : (kvCacheMemory ?? base.kvCacheMemory),
      gpuMemoryUtilization: gpuMemoryUtilization ?? equalShare,
    },
    servedModelName,
    chatTemplate: templatePath === undefined ? chatTemplate : readChatTemplate(`${where} chatTemplate`, templatePath),
  };
}

function modelSpecs(args: ServeArgs, repeated: Repeated): ModelSpec[] {
  const base = coreOptions(args);
  // coreOptions always sets it, from --gpu-memory-utilization or its default.
  const utilization = base.gpuMemoryUtilization!;
  const chatTemplate = readChatTemplate("--chat-template", args["chat-template"]);
  const configPath = args["models-config"];
  if (configPath !== undefined) {
    if (args.model !== undefined || repeated.model.length > 0 || repeated["served-model-name"].length > 0) {
      throw new UsageError(
        "--models-config names the models and their served names itself: drop MODEL, --model and --served-model-name",
      );
    }
    if (!existsSync(configPath)) throw new UsageError(`--models-config: no file ${configPath}`);
    const entries = parseModelsConfig(configPath, readFileSync(configPath, "utf8"));
    return entries.map((entry, i) => specOfEntry(entry, i, base, utilization / entries.length, chatTemplate));
  }
  const models = [...(args.model === undefined ? [] : [args.model]), ...repeated.model];
  // No model at all serves the demo model.
  const dirs = models.length > 0 ? models : [undefined];
  const names = repeated["served-model-name"];
  if (names.length > 0 && names.length !== dirs.length) {
    throw new UsageError(
      `--served-model-name is given ${names.length} times for ${dirs.length} models: give one per model, in the order of the models`,
    );
  }
  return dirs.map((model, i) => ({
    options: { ...base, model, gpuMemoryUtilization: utilization / dirs.length },
    servedModelName: names[i],
    chatTemplate,
  }));
}

/** The tool-call and reasoning parsers the flags name, checked before any model loads. */
function parserOptions(args: ServeArgs) {
  const toolCallParser = args["tool-call-parser"] ?? null;
  const reasoningParser = args["reasoning-parser"] ?? null;
  const enableAutoToolChoice = args["enable-auto-tool-choice"] ?? false;
  const known = (names: Record<string, unknown>) => Object.keys(names).join(", ");
  if (toolCallParser !== null && !(toolCallParser in TOOL_PARSERS))
    throw new UsageError(`--tool-call-parser: unknown parser "${toolCallParser}" (known: ${known(TOOL_PARSERS)})`);
  if (reasoningParser !== null && !(reasoningParser in REASONING_PARSERS))
    throw new UsageError(
      `--reasoning-parser: unknown parser "${reasoningParser}" (known: ${known(REASONING_PARSERS)})`,
    );
  if (enableAutoToolChoice && toolCallParser === null)
    throw new UsageError("--enable-auto-tool-choice needs --tool-call-parser to say how the model writes tool calls");
  return { toolCallParser, reasoningParser, enableAutoToolChoice };
}

/** A request with more samples than the pending bound could never be admitted: --max-n stays within it. */
function maxNOption(value: string | undefined, maxPendingRequests: number): number {
  if (value === undefined) return Math.min(DEFAULT_MAX_N, maxPendingRequests);
  const maxN = integer("max-n", value, 1);
  if (maxN > maxPendingRequests)
    throw new UsageError(
      `--max-n ${maxN} is more than --max-pending-requests ${maxPendingRequests}: no request with that many samples could ever be admitted`,
    );
  return maxN;
}

function logStarted({ servedModelName, engine }: ServedModel, seconds: number): void {
  const { info, source } = engine;
  const { kvCacheSize } = info;
  logger.info(
    `${servedModelName}: ${source.ggufFile ?? source.dir ?? source.name} (${source.config.architecture}, ${mib(info.weightBytes)} of weights) ` +
      `loaded on ${info.device} (${info.deviceName}) in ${seconds.toFixed(2)} s` +
      (info.deviceFallback ? `; not used: ${info.deviceFallback}` : ""),
  );
  logger.info(
    `${servedModelName}: KV cache: ${kvCacheSize.numBlocks} blocks of ${kvCacheSize.blockSize} tokens ` +
      `(${kvCacheSize.maxTokens} tokens, ${mib(kvCacheSize.bytes)}); max model len ${info.config.maxModelLen}`,
  );
}

export default defineCommand({
  meta: { name: "serve", description: "Serve one or more models over an OpenAI-compatible HTTP API" },
  args: serveArgs,
  async run({ rawArgs }) {
    let models: ServedModel[] = [];
    try {
      const { repeated, rest } = takeRepeatedOptions(rawArgs);
      const args = parseArgs<typeof serveArgs>(rest, serveArgs);
      const specs = modelSpecs(args, repeated);
      const port = integer("port", args.port, 0);
      if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
      const maxPendingRequests = integer("max-pending-requests", args["max-pending-requests"], 1);
      const maxN = maxNOption(args["max-n"], maxPendingRequests);
      const maxBodyBytes = bytes("max-request-body", args["max-request-body"]);
      const requestBodyTimeoutMs = 1000 * number("request-body-timeout", args["request-body-timeout"], 0.001);
      const cors = new CorsPolicy({
        allowedOrigins: parseListFlag("allowed-origins", args["allowed-origins"]),
        allowedMethods: parseListFlag("allowed-methods", args["allowed-methods"]).map((m) => m.toUpperCase()),
        allowedHeaders: parseListFlag("allowed-headers", args["allowed-headers"]),
        allowCredentials: args["allow-credentials"],
      });
      const keepAliveTimeoutSeconds = integer("timeout-keep-alive", args["timeout-keep-alive"], 1);
      if (keepAliveTimeoutSeconds > MAX_IDLE_TIMEOUT_SECONDS)
        throw new UsageError(
          `--timeout-keep-alive must be at most ${MAX_IDLE_TIMEOUT_SECONDS}, got ${keepAliveTimeoutSeconds}`,
        );
      const limitConcurrency = integer("limit-concurrency", args["limit-concurrency"], 1);
      const parsers = parserOptions(args);
      const logRequests = logRequestsOption(args["enable-log-requests"], args["disable-log-requests"]);
      const statsInterval = args["disable-log-stats"] ? null : statsIntervalSeconds();

      // Bound before the models load, as vLLM binds its socket first: a port in use fails at once,
      // not after minutes of loading. Until they are ready, every request gets a 503.
      const server = listen(args.host, port, keepAliveTimeoutSeconds);
      logger.info(
        `listening on http://${server.hostname}:${server.port}; loading ${specs.length === 1 ? "the model" : `${specs.length} models`}`,
      );
      models = await startServedModels(specs, logStarted);
      const apiKey = args["api-key"] ?? process.env.VLLM_API_KEY ?? null;
      const grammarChecker = new GrammarChecker();
      const context: ServerContext = {
        models,
        apiKey,
        maxPendingRequests,
        maxN,
        maxBodyBytes,
        ...parsers,
        grammarChecker,
        logRequests,
      };
      server.reload({
        fetch: withConnectionLimits(
          createApp(
            context,
            { allowedHosts: allowedHosts(args["allowed-hosts"], args.host), requestBodyTimeoutMs, cors },
            (error) => logger.error("request failed:", error),
          ),
          { keepAliveTimeoutSeconds, limitConcurrency },
          (request) => logger.info(`client disconnected: ${request.method} ${new URL(request.url).pathname}`),
        ),
      });
      if (statsInterval !== null) logStatsPeriodically(models, statsInterval);
      const names = models.map((model) => model.servedModelName).join(", ");
      // performance.now() counts from the process's start: the figure a user waits for.
      const readyAfter = (performance.now() / 1000).toFixed(2);
      logger.success(
        `serving ${names} at http://${server.hostname}:${server.port}/v1${apiKey ? " (API key required)" : ""}, ready ${readyAfter} s after start`,
      );

      const running = models;
      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        logger.info(`${signal}: shutting down`);
        void server.stop();
        await shutdownServedModels(running);
        await server.stop(true);
        process.exit(0);
      };
      process.on("SIGINT", () => void stop("SIGINT"));
      process.on("SIGTERM", () => void stop("SIGTERM"));
    } catch (error) {
      logger.error(error instanceof Error ? error.message : String(error));
      await shutdownServedModels(models);
      process.exit(1);
    }
  },
});
