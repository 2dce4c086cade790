// A soak test of `vllm-ts serve`: N mixed requests (completions and chat, streamed or not, n of 1
// to 4, now and then a long prompt or a /tokenize) at a fixed concurrency against a server it
// starts, a share of the clients leaving at a random moment (before the answer, or mid-stream).
// It reports errors, latency percentiles, the server's RSS and open file descriptors over time
// (Linux /proc), and what the engine still holds at the end: after every client is gone, no
// sequence should run or wait and no KV block be in use. Not run in CI.
//   bun bench/soak.ts [--requests 20000] [--concurrency 64] [--disconnect 0.1] [--output-json FILE] [-- SERVE ARGS]
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { percentile } from "../src/bench/percentiles.ts";
import { fixed, formatTable, sparkline } from "../src/bench/report.ts";

const { values: options, positionals: serveArgs } = parseArgs({
  allowPositionals: true,
  options: {
    requests: { type: "string", default: "20000" },
    concurrency: { type: "string", default: "64" },
    /** The share of clients that leave early. */
    disconnect: { type: "string", default: "0.1" },
    executable: { type: "string", default: resolve(import.meta.dir, "../dist/vllm-ts") },
    seed: { type: "string", default: "1" },
    "output-json": { type: "string" },
  },
});
const numRequests = Number(options.requests);
const concurrency = Number(options.concurrency);
const disconnectShare = Number(options.disconnect);

/** mulberry32: a seeded stream of uniforms in [0, 1), so that two runs send the same requests. */
function makeRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
const random = makeRandom(Number(options.seed));
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

// The demo model by default, with a KV cache small enough that RSS says something.
const child = Bun.spawn(
  [options.executable, "serve", "--host", "127.0.0.1", "--port", "0", "--kv-cache-memory", "256MiB", ...serveArgs],
  { stdin: "ignore", stdout: "ignore", stderr: "pipe" },
);
let serverLog = "";
void (async () => {
  const decoder = new TextDecoder();
  for await (const chunk of child.stderr) serverLog += decoder.decode(chunk, { stream: true });
})();

async function waitForServer(): Promise<string> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the server exited with code ${child.exitCode}:\n${serverLog}`);
    const url = /serving .* at (http:\/\/[\d.]+:\d+)\/v1/.exec(serverLog)?.[1];
    if (
      url &&
      (await fetch(`${url}/health`).then(
        (r) => r.ok,
        () => false,
      ))
    )
      return url;
    await Bun.sleep(100);
  }
  throw new Error(`the server did not start within 120 s:\n${serverLog}`);
}

const url = await waitForServer();
const numBlocks = Number(/KV cache: (\d+) blocks/.exec(serverLog)?.[1] ?? Number.NaN);
const WORDS = "the of and to in is that for it as was with be by on not he this are or his from".split(" ");
const words = (count: number) => Array.from({ length: count }, () => pick(WORDS)).join(" ");

interface Job {
  path: string;
  body: object;
  stream: boolean;
  /** Leaves after this many ms (before or during the answer), or never. */
  leaveAfterMs: number | null;
}

function nextJob(): Job {
  const stream = random() < 0.5;
  const leaveAfterMs = random() < disconnectShare ? random() * 300 : null;
  const sampling = { max_tokens: 1 + Math.floor(random() * 16), n: pick([1, 1, 1, 2, 4]), temperature: pick([0, 0.8]) };
  // One request in 50 has a prompt long enough (about 24 KB) for the tokenizer thread.
  const prompt = random() < 0.02 ? words(4000) : words(4 + Math.floor(random() * 60));
  const kind = random();
  if (kind < 0.05) return { path: "/tokenize", body: { prompt }, stream: false, leaveAfterMs };
  if (kind < 0.5)
    return { path: "/v1/completions", body: { prompt, ...sampling, stream, ignore_eos: true }, stream, leaveAfterMs };
  const messages = [{ role: "user", content: prompt }];
  return { path: "/v1/chat/completions", body: { messages, ...sampling, stream }, stream, leaveAfterMs };
}

type Outcome = { kind: "ok"; ms: number } | { kind: "left" } | { kind: "error"; what: string };

async function send(job: Job): Promise<Outcome> {
  const controller = new AbortController();
  const timer = job.leaveAfterMs === null ? null : setTimeout(() => controller.abort(), job.leaveAfterMs);
  const started = performance.now();
  try {
    const response = await fetch(`${url}${job.path}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(job.body),
      signal: controller.signal,
    });
    const text = await response.text();
    if (!response.ok) return { kind: "error", what: `HTTP ${response.status}: ${text.slice(0, 120)}` };
    if (job.stream && !text.includes('"error"') && !text.endsWith("data: [DONE]\n\n"))
      return { kind: "error", what: "stream ended without [DONE]" };
    if (text.includes('"error"')) return { kind: "error", what: `error event: ${text.slice(0, 120)}` };
    return { kind: "ok", ms: performance.now() - started };
  } catch (error) {
    if (controller.signal.aborted) return { kind: "left" };
    return { kind: "error", what: error instanceof Error ? error.message : String(error) };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/** The server's resident memory (MiB) and open file descriptors, from /proc. */
function serverResources(): { rssMiB: number; fds: number } {
  const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return { rssMiB: rssKiB / 1024, fds: readdirSync(`/proc/${child.pid}/fd`).length };
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`));
  return Number(line?.slice(line.lastIndexOf(" ") + 1) ?? Number.NaN);
}

const latencies: number[] = [];
const errors = new Map<string, number>();
let left = 0;
let done = 0;
const samples: { seconds: number; done: number; rssMiB: number; fds: number }[] = [];
const start = performance.now();
const sampler = setInterval(() => {
  samples.push({ seconds: (performance.now() - start) / 1000, done, ...serverResources() });
  const last = samples.at(-1)!;
  if (!process.stderr.isTTY) return;
  process.stderr.write(
    `\r${fixed(last.seconds, 0)} s: ${done}/${numRequests} done, RSS ${fixed(last.rssMiB, 0)} MiB, ${last.fds} fds   `,
  );
}, 1000);

let issued = 0;
async function worker(): Promise<void> {
  while (issued < numRequests) {
    issued++;
    const outcome = await send(nextJob());
    done++;
    if (outcome.kind === "ok") latencies.push(outcome.ms);
    else if (outcome.kind === "left") left++;
    else errors.set(outcome.what, (errors.get(outcome.what) ?? 0) + 1);
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
clearInterval(sampler);
const elapsed = (performance.now() - start) / 1000;
if (process.stderr.isTTY) process.stderr.write("\n");

// Every client is gone: the engine must let go of everything, at once.
await Bun.sleep(500);
const end = {
  running: await metric("vllm:num_requests_running"),
  waiting: await metric("vllm:num_requests_waiting"),
  kvBlocksInUse: Math.round((await metric("vllm:kv_cache_usage_perc")) * numBlocks),
  ...serverResources(),
};
child.kill("SIGTERM");
const exitCode = await child.exited;

const sorted = latencies.sort((a, b) => a - b);
const numErrors = [...errors.values()].reduce((sum, count) => sum + count, 0);
const rss = samples.map((s) => s.rssMiB);
const fds = samples.map((s) => s.fds);
console.log(
  formatTable([
    ["requests", String(numRequests)],
    ["concurrency", String(concurrency)],
    ["elapsed", `${fixed(elapsed, 1)} s (${fixed(numRequests / elapsed, 1)} requests/s)`],
    ["completed", String(latencies.length)],
    ["clients that left", String(left)],
    ["errors", String(numErrors)],
    ["latency p50 / p99", `${fixed(percentile(sorted, 50), 0)} / ${fixed(percentile(sorted, 99), 0)} ms`],
    ["RSS first / max / end", `${fixed(rss[0] ?? 0, 0)} / ${fixed(Math.max(...rss), 0)} / ${fixed(end.rssMiB, 0)} MiB`],
    ["open fds first / max / end", `${fds[0] ?? 0} / ${Math.max(...fds)} / ${end.fds}`],
    ["at the end: running, waiting", `${end.running}, ${end.waiting}`],
    ["at the end: KV blocks in use", `${end.kvBlocksInUse} of ${numBlocks}`],
    ["server exit code (SIGTERM)", String(exitCode)],
  ]),
);
console.log(`RSS over time  ${sparkline(rss)}`);
console.log(`fds over time  ${sparkline(fds)}`);
for (const [what, count] of errors) console.log(`error x${count}: ${what}`);

if (options["output-json"] !== undefined) {
  const results = { elapsed, completed: latencies.length, left, errors: Object.fromEntries(errors), end, samples };
  const configuration = { numRequests, concurrency, disconnectShare, serveArgs, seed: Number(options.seed) };
  await Bun.write(options["output-json"], `${JSON.stringify({ configuration, results }, null, 2)}\n`);
}
