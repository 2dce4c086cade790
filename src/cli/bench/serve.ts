// `vllm-ts bench serve`: streaming completions against a running OpenAI-compatible server (--url)
// or one this command starts itself, reported under vLLM's bench serve metric names.
import { writeFileSync } from "node:fs";
import { defineCommand, parseArgs, type ArgsDef } from "citty";
import packageJson from "../../../package.json";
import { coreOptions, engineArgs, integer, modelArgs, number, UsageError } from "../engine-args.ts";
import { logger } from "../logger.ts";
import { latencySummary } from "./percentiles.ts";
import { serveChart, throughputSparkline } from "./plot-serve.ts";
import { plotArgs, plotPath, writePlot } from "./plot-svg.ts";
import { startChildServer, type ChildServer } from "./serve-child.ts";
import { arrivalGap, fetchTokenPool, randomPrompt, seededRandom, streamCompletion, type RequestOutcome } from "./serve-client.ts";

const LATENCIES = ["ttft", "tpot", "itl", "e2el"] as const;

const benchServeArgs = {
  ...modelArgs,
  model: { ...modelArgs.model, description: `${modelArgs.model.description}; served here when --url is not given. With --url, --model NAME is the served model name (default: the server's first)` },
  ...engineArgs,
  url: { type: "string", description: "Base URL of a running server (http://host:port); without it, `serve` is started on a free port" },
  "num-prompts": { type: "string", default: "100", description: "Requests to send" },
  "input-len": { type: "string", default: "1024", description: "Prompt tokens of each random prompt" },
  "output-len": { type: "string", default: "128", description: "Tokens to generate per request (ignore_eos)" },
  "request-rate": { type: "string", default: "inf", description: "Requests per second, Poisson arrivals with --seed; inf sends them all at once" },
  "max-concurrency": { type: "string", description: "Most requests in flight at once (default: no limit)" },
  goodput: { type: "string", description: "Service-level objectives of a good request, e.g. --goodput ttft:500 tpot:50 e2el:5000 (ms)" },
  "output-json": { type: "string", description: "Write every figure, the configuration, the device and the version to this JSON file" },
  ...plotArgs,
} as const satisfies ArgsDef;

type Objectives = Partial<Record<"ttft" | "tpot" | "e2el", number>>;

/**
 * `--model NAME` and `--goodput KEY:MS ...` are taken out of the raw arguments before citty reads
 * the rest: citty would read NAME as the positional MODEL, and the values after the first
 * --goodput one as positionals.
 */
function takeSpecialOptions(rawArgs: readonly string[]): { servedName?: string; objectives: Objectives | null; rest: string[] } {
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
        if (key !== "ttft" && key !== "tpot" && key !== "e2el") throw new UsageError(`--goodput: unknown objective "${key}" (ttft, tpot or e2el)`);
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

async function firstServedModel(url: string): Promise<string> {
  const response = await fetch(`${url}/v1/models`);
  if (!response.ok) throw new Error(`${url}/v1/models answered ${response.status}`);
  const { data } = (await response.json()) as { data: { id: string }[] };
  if (data.length === 0) throw new Error(`${url} serves no model`);
  return data[0]!.id;
}

/** Runs `task` for each item, at most `limit` at once, in order of arrival. */
function limiter(limit: number): <T>(task: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (task) => {
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      return await task();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}

/** Time per output token after the first: (e2el - ttft) / (output tokens - 1); none for one token. */
function tpotOf(outcome: RequestOutcome): number | null {
  return outcome.outputLen > 1 ? (outcome.e2elMs - outcome.ttftMs) / (outcome.outputLen - 1) : null;
}

function isGood(outcome: RequestOutcome, objectives: Objectives): boolean {
  const tpot = tpotOf(outcome) ?? 0;
  return (objectives.ttft === undefined || outcome.ttftMs <= objectives.ttft)
    && (objectives.tpot === undefined || tpot <= objectives.tpot)
    && (objectives.e2el === undefined || outcome.e2elMs <= objectives.e2el);
}

function printSummary(result: Record<string, number>, durationS: number, hasGoodput: boolean): void {
  const line = (label: string, value: number | string) => console.log(`${label.padEnd(40)}${typeof value === "number" ? value.toFixed(2) : value}`);
  console.log("============ Serving Benchmark Result ============");
  line("Successful requests:", String(result.completed));
  line("Failed requests:", String(result.failed));
  line("Benchmark duration (s):", durationS);
  line("Total input tokens:", String(result.total_input_tokens));
  line("Total generated tokens:", String(result.total_output_tokens));
  line("Request throughput (req/s):", result.request_throughput!);
  if (hasGoodput) line("Request goodput (req/s):", result.request_goodput!);
  line("Output token throughput (tok/s):", result.output_throughput!);
  line("Total token throughput (tok/s):", result.total_token_throughput!);
  const titles = { ttft: "Time to First Token", tpot: "Time per Output Token (excl. 1st token)", itl: "Inter-token Latency", e2el: "End-to-end Latency" };
  for (const name of LATENCIES) {
    console.log(`${"-".repeat(((50 - titles[name].length - 2) >> 1) || 1)} ${titles[name]} ${"-".repeat(((50 - titles[name].length - 1) >> 1) || 1)}`);
    line(`Mean ${name.toUpperCase()} (ms):`, result[`mean_${name}_ms`]!);
    line(`Median ${name.toUpperCase()} (ms):`, result[`median_${name}_ms`]!);
    line(`P90 ${name.toUpperCase()} (ms):`, result[`p90_${name}_ms`]!);
    line(`P99 ${name.toUpperCase()} (ms):`, result[`p99_${name}_ms`]!);
  }
  console.log("=".repeat(50));
}

export default defineCommand({
  meta: { name: "serve", description: "Benchmark an OpenAI-compatible server with streaming random-prompt completions (vLLM's bench serve)" },
  args: benchServeArgs,
  async run({ rawArgs }) {
    let child: ChildServer | null = null;
    try {
      const { servedName, objectives, rest } = takeSpecialOptions(rawArgs);
      const args = parseArgs<typeof benchServeArgs>(rest, benchServeArgs);
      const numPrompts = integer("num-prompts", args["num-prompts"], 1);
      const inputLen = integer("input-len", args["input-len"], 1);
      const outputLen = integer("output-len", args["output-len"], 1);
      const requestRate = args["request-rate"] === "inf" ? Infinity : number("request-rate", args["request-rate"], 0);
      if (requestRate <= 0) throw new UsageError("--request-rate must be positive or inf");
      const maxConcurrency = args["max-concurrency"] === undefined ? Infinity : integer("max-concurrency", args["max-concurrency"], 1);
      const seed = coreOptions(args).seed ?? 0;
      const plot = plotPath(args.plot);

      let url: string;
      let device = "remote";
      if (args.url !== undefined) url = args.url.replace(/\/+$/, "").replace(/\/v1$/, "");
      else {
        logger.info("starting serve for the benchmark");
        child = await startChildServer(serveArgsOf(args, args.model ?? servedName));
        ({ url, device } = child);
      }
      const model = args.url !== undefined && servedName !== undefined ? servedName : await firstServedModel(url);

      const random = seededRandom(seed);
      const pool = await fetchTokenPool(url, model);
      const prompts = Array.from({ length: numPrompts }, () => randomPrompt(pool, inputLen, random));
      logger.info(`bench serve: ${numPrompts} prompts of ${inputLen} tokens, ${outputLen} output tokens, to ${model} at ${url}`);

      const limit = limiter(maxConcurrency);
      const showProgress = process.stderr.isTTY === true;
      let done = 0;
      const start = performance.now();
      const requests: Promise<RequestOutcome>[] = [];
      for (const prompt of prompts) {
        if (requests.length > 0) await Bun.sleep(arrivalGap(requestRate, random) * 1000);
        requests.push(limit(() => streamCompletion(url, model, prompt, outputLen)).then((outcome) => {
          done++;
          if (showProgress) process.stderr.write(`\r${done}/${numPrompts} requests done`);
          return outcome;
        }));
      }
      const outcomes = await Promise.all(requests);
      const durationS = (performance.now() - start) / 1000;
      if (showProgress) process.stderr.write("\n");

      const succeeded = outcomes.filter((o) => o.success);
      const totalInput = succeeded.reduce((sum, o) => sum + o.promptLen, 0);
      const totalOutput = succeeded.reduce((sum, o) => sum + o.outputLen, 0);
      const samples = {
        ttft: succeeded.map((o) => o.ttftMs),
        tpot: succeeded.map(tpotOf).filter((t): t is number => t !== null),
        itl: succeeded.flatMap((o) => o.itlMs),
        e2el: succeeded.map((o) => o.e2elMs),
      };
      const result: Record<string, number> = {
        duration: durationS,
        completed: succeeded.length,
        failed: outcomes.length - succeeded.length,
        total_input_tokens: totalInput,
        total_output_tokens: totalOutput,
        request_throughput: succeeded.length / durationS,
        ...(objectives ? { request_goodput: succeeded.filter((o) => isGood(o, objectives)).length / durationS } : {}),
        output_throughput: totalOutput / durationS,
        total_token_throughput: (totalInput + totalOutput) / durationS,
        ...Object.assign({}, ...LATENCIES.map((name) => latencySummary(name, samples[name]))),
      };
      printSummary(result, durationS, objectives !== null);
      console.log(`Output tok/s over time: ${throughputSparkline(outcomes, start, durationS)}`);
      if (plot !== undefined) writePlot(plot, "bench serve", serveChart(samples, outcomes, start, durationS));
      const errors = outcomes.filter((o) => !o.success).map((o) => o.error);
      if (errors.length > 0) logger.warn(`${errors.length} requests failed; the first: ${errors[0]}`);

      if (args["output-json"]) {
        const report = {
          date: new Date().toISOString(),
          backend: "vllm-ts",
          version: packageJson.version,
          device,
          config: {
            url, model, num_prompts: numPrompts, input_len: inputLen, output_len: outputLen,
            request_rate: Number.isFinite(requestRate) ? requestRate : "inf",
            max_concurrency: Number.isFinite(maxConcurrency) ? maxConcurrency : null, seed, goodput: objectives,
          },
          ...result,
          input_lens: outcomes.map((o) => o.promptLen),
          output_lens: outcomes.map((o) => o.outputLen),
          ttfts: outcomes.map((o) => o.ttftMs),
          itls: outcomes.map((o) => o.itlMs),
          e2els: outcomes.map((o) => o.e2elMs),
          errors: outcomes.map((o) => o.error),
        };
        writeFileSync(args["output-json"], `${JSON.stringify(report, null, 2)}\n`);
      }
    } catch (error) {
      logger.error(error instanceof Error ? error.message : String(error));
      process.exitCode = 1;
    } finally {
      await child?.stop();
    }
  },
});
