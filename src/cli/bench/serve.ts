// `vllm-ts bench serve`: streaming completions against a running OpenAI-compatible server (--url)
// or one this command starts itself, reported under vLLM's bench serve metric names
// (src/bench/serve/benchmark.ts runs it). Here: the flags, read into its options.
import { type ArgsDef, defineCommand, parseArgs } from "citty";
import { runServeBenchmark } from "../../bench/serve/benchmark.ts";
import type { Objectives } from "../../bench/serve/metrics.ts";
import { logger } from "../../logger.ts";
import { UsageError } from "../../usage-error.ts";
import { coreOptions, engineArgs, integer, modelArgs, number } from "../engine-args.ts";
import { plotArgs, plotPath } from "./bench-args.ts";

const benchServeArgs = {
  ...modelArgs,
  model: {
    ...modelArgs.model,
    description: `${modelArgs.model.description}; served here when --url is not given. With --url, --model NAME is the served model name (default: the server's first)`,
  },
  ...engineArgs,
  url: {
    type: "string",
    description: "Base URL of a running server (http://host:port); without it, `serve` is started on a free port",
  },
  "num-prompts": { type: "string", default: "100", description: "Requests to send" },
  "input-len": { type: "string", default: "1024", description: "Prompt tokens of each random prompt" },
  "output-len": { type: "string", default: "128", description: "Tokens to generate per request (ignore_eos)" },
  "request-rate": {
    type: "string",
    default: "inf",
    description: "Requests per second, Poisson arrivals with --seed; inf sends them all at once",
  },
  "max-concurrency": { type: "string", description: "Most requests in flight at once (default: no limit)" },
  goodput: {
    type: "string",
    description: "Service-level objectives of a good request, e.g. --goodput ttft:500 tpot:50 e2el:5000 (ms)",
  },
  "output-json": {
    type: "string",
    description: "Write every figure, the configuration, the device and the version to this JSON file",
  },
  ...plotArgs,
} as const satisfies ArgsDef;

/**
 * `--model NAME` and `--goodput KEY:MS ...` are taken out of the raw arguments before citty reads
 * the rest: citty would read NAME as the positional MODEL, and the values after the first
 * --goodput one as positionals.
 */
function takeSpecialOptions(rawArgs: readonly string[]): {
  servedName?: string;
  objectives: Objectives | null;
  rest: string[];
} {
  let servedName: string | undefined;
  let objectives: Objectives | null = null;
  const rest: string[] = [];
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i]!;
    if (arg === "--model" || arg.startsWith("--model=")) {
      servedName = arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : rawArgs[++i];
      if (servedName === undefined) throw new UsageError("--model needs a value");
    } else if (arg === "--goodput" || arg.startsWith("--goodput=")) {
      const values = arg.includes("=") ? [arg.slice(arg.indexOf("=") + 1)] : [];
      while (i + 1 < rawArgs.length && /^\w+:/.test(rawArgs[i + 1]!)) values.push(rawArgs[++i]!);
      objectives = {};
      for (const value of values) {
        const [key, ms] = value.split(":");
        if (key !== "ttft" && key !== "tpot" && key !== "e2el")
          throw new UsageError(`--goodput: unknown objective "${key}" (ttft, tpot or e2el)`);
        objectives[key] = number(`goodput ${key}`, ms ?? "", 0);
      }
      if (values.length === 0) throw new UsageError("--goodput needs objectives like ttft:500");
    } else rest.push(arg);
  }
  return { servedName, objectives, rest };
}

/** The model and engine options, passed on to a self-started `serve`. */
function serveArgsOf(args: Record<string, unknown>, modelDir: string | undefined): string[] {
  const forwarded: string[] = modelDir === undefined ? [] : [modelDir];
  for (const name of Object.keys({ ...modelArgs, ...engineArgs })) {
    const value = args[name];
    if (name === "model" || value === undefined) continue;
    if (typeof value === "boolean") forwarded.push(value ? `--${name}` : `--no-${name}`);
    else forwarded.push(`--${name}`, String(value));
  }
  return forwarded;
}

export default defineCommand({
  meta: {
    name: "serve",
    description: "Benchmark an OpenAI-compatible server with streaming random-prompt completions (vLLM's bench serve)",
  },
  args: benchServeArgs,
  async run({ rawArgs }) {
    try {
      const { servedName, objectives, rest } = takeSpecialOptions(rawArgs);
      const args = parseArgs<typeof benchServeArgs>(rest, benchServeArgs);
      const numPrompts = integer("num-prompts", args["num-prompts"], 1);
      const inputLen = integer("input-len", args["input-len"], 1);
      const outputLen = integer("output-len", args["output-len"], 1);
      const requestRate = args["request-rate"] === "inf" ? Infinity : number("request-rate", args["request-rate"], 0);
      if (requestRate <= 0) throw new UsageError("--request-rate must be positive or inf");
      const maxConcurrency =
        args["max-concurrency"] === undefined ? Infinity : integer("max-concurrency", args["max-concurrency"], 1);
      const seed = coreOptions(args).seed ?? 0;
      const plot = plotPath(args.plot);
      await runServeBenchmark({
        server:
          args.url !== undefined
            ? { url: args.url.replace(/\/+$/, "").replace(/\/v1$/, ""), model: servedName }
            : { serveArgs: serveArgsOf(args, args.model ?? servedName) },
        numPrompts,
        inputLen,
        outputLen,
        requestRate,
        maxConcurrency,
        seed,
        objectives,
        plot,
        outputJson: args["output-json"],
      });
    } catch (error) {
      logger.error(error instanceof Error ? error.message : String(error));
      process.exitCode = 1;
    }
  },
});
