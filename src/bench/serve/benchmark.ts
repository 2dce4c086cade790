// `vllm-ts bench serve`: streaming completions against a running OpenAI-compatible server or one
// started for the run (child-server.ts), sent at Poisson arrivals under a concurrency limit, and
// reported under vLLM's bench serve metric names (metrics.ts).
import { writeFileSync } from "node:fs";
import packageJson from "../../../package.json";
import { logger } from "../../logger.ts";
import { serveChart, throughputSparkline } from "../plot/serve.ts";
import { writePlot } from "../plot/svg.ts";
import { type ChildServer, startChildServer } from "./child-server.ts";
import {
  arrivalGap,
  fetchTokenPool,
  type RequestOutcome,
  randomPrompt,
  seededRandom,
  streamCompletion,
} from "./client.ts";
import { type Objectives, printSummary, serveMetrics } from "./metrics.ts";

export interface ServeBenchOptions {
  /** A running server (its base URL, and the served model name; default: its first model), or the arguments of the `serve` to start. */
  server: { url: string; model: string | undefined } | { serveArgs: string[] };
  numPrompts: number;
  /** Tokens of each random prompt. */
  inputLen: number;
  /** Tokens each request generates (ignore_eos). */
  outputLen: number;
  /** Requests per second (Poisson arrivals); Infinity sends them all at once. */
  requestRate: number;
  /** Most requests in flight at once; Infinity for no limit. */
  maxConcurrency: number;
  seed: number;
  /** The service-level objectives of a good request; null: no goodput. */
  objectives: Objectives | null;
  plot: string | undefined;
  outputJson: string | undefined;
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

/** Sends every request, prints the summary, draws and writes what was asked for; stops a server it started. */
export async function runServeBenchmark(options: ServeBenchOptions): Promise<void> {
  const { server, numPrompts, inputLen, outputLen, requestRate, maxConcurrency, seed, objectives } = options;
  let child: ChildServer | null = null;
  try {
    let url: string;
    let device = "remote";
    if ("url" in server) url = server.url;
    else {
      logger.info("starting serve for the benchmark");
      child = await startChildServer(server.serveArgs);
      ({ url, device } = child);
    }
    const model = "url" in server && server.model !== undefined ? server.model : await firstServedModel(url);

    const random = seededRandom(seed);
    const pool = await fetchTokenPool(url, model);
    const prompts = Array.from({ length: numPrompts }, () => randomPrompt(pool, inputLen, random));
    logger.info(
      `bench serve: ${numPrompts} prompts of ${inputLen} tokens, ${outputLen} output tokens, to ${model} at ${url}`,
    );

    const limit = limiter(maxConcurrency);
    const showProgress = process.stderr.isTTY === true;
    let done = 0;
    const start = performance.now();
    const requests: Promise<RequestOutcome>[] = [];
    for (const prompt of prompts) {
      if (requests.length > 0) await Bun.sleep(arrivalGap(requestRate, random) * 1000);
      requests.push(
        limit(() => streamCompletion(url, model, prompt, outputLen)).then((outcome) => {
          done++;
          if (showProgress) process.stderr.write(`\r${done}/${numPrompts} requests done`);
          return outcome;
        }),
      );
    }
    const outcomes = await Promise.all(requests);
    const durationS = (performance.now() - start) / 1000;
    if (showProgress) process.stderr.write("\n");

    const { result, samples } = serveMetrics(outcomes, durationS, objectives);
    printSummary(result, durationS, objectives !== null);
    console.log(`Output tok/s over time: ${throughputSparkline(outcomes, start, durationS)}`);
    if (options.plot !== undefined)
      writePlot(options.plot, "bench serve", serveChart(samples, outcomes, start, durationS));
    const errors = outcomes.filter((o) => !o.success).map((o) => o.error);
    if (errors.length > 0) logger.warn(`${errors.length} requests failed; the first: ${errors[0]}`);

    if (options.outputJson) {
      const report = {
        date: new Date().toISOString(),
        backend: "vllm-ts",
        version: packageJson.version,
        device,
        config: {
          url,
          model,
          num_prompts: numPrompts,
          input_len: inputLen,
          output_len: outputLen,
          request_rate: Number.isFinite(requestRate) ? requestRate : "inf",
          max_concurrency: Number.isFinite(maxConcurrency) ? maxConcurrency : null,
          seed,
          goodput: objectives,
        },
        ...result,
        input_lens: outcomes.map((o) => o.promptLen),
        output_lens: outcomes.map((o) => o.outputLen),
        ttfts: outcomes.map((o) => o.ttftMs),
        itls: outcomes.map((o) => o.itlMs),
        e2els: outcomes.map((o) => o.e2elMs),
        errors: outcomes.map((o) => o.error),
      };
      writeFileSync(options.outputJson, `${JSON.stringify(report, null, 2)}\n`);
    }
  } finally {
    await child?.stop();
  }
}
