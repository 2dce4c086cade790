// The requests a benchmark runs: seeded random token ids of given lengths (vLLM's `--dataset
// random`), or prompts from a JSONL file ({"prompt": ...} lines or ShareGPT conversations).
import type { ArgsDef, ParsedArgs } from "citty";
import type { RequestGenerator } from "../../engine/random.ts";
import type { ModelTokenizer } from "../../model/tokenizer.ts";
import { integer, number, UsageError } from "../engine-args.ts";

export const datasetArgs = {
  dataset: { type: "string", default: "random", description: "random | a JSONL file of {\"prompt\": ...} lines or ShareGPT {\"conversations\": [...]} records" },
  "num-prompts": { type: "string", default: "100", description: "Requests to run" },
  "input-len": { type: "string", default: "128", description: "Prompt tokens of random requests: N, or LOW:HIGH" },
  "output-len": { type: "string", default: "128", description: "Tokens to generate (ignoring EOS): N, or LOW:HIGH" },
  "range-ratio": { type: "string", default: "0", description: "Random lengths are drawn uniformly from [N*(1-r), N*(1+r)]" },
} as const satisfies ArgsDef;

export type DatasetArgs = ParsedArgs<typeof datasetArgs>;

/** One benchmark request: the prompt's token ids and exactly how many tokens to generate. */
export interface BenchRequest {
  promptTokenIds: number[];
  outputLen: number;
}

/** An inclusive range of lengths. */
export interface LengthRange {
  low: number;
  high: number;
}

/** "N" with a range ratio r gives [N*(1-r), N*(1+r)]; "LOW:HIGH" gives itself. */
export function lengthRange(name: string, value: string, rangeRatio: number): LengthRange {
  const parts = value.split(":");
  if (parts.length === 2) {
    const low = integer(name, parts[0]!, 1);
    const high = integer(name, parts[1]!, low);
    return { low, high };
  }
  const length = integer(name, value, 1);
  return { low: Math.max(1, Math.floor(length * (1 - rangeRatio))), high: Math.max(1, Math.ceil(length * (1 + rangeRatio))) };
}

export function rangeRatio(value: string): number {
  const ratio = number("range-ratio", value, 0);
  if (ratio >= 1) throw new UsageError(`--range-ratio must be in [0, 1), got ${ratio}`);
  return ratio;
}

export function between(random: RequestGenerator, range: LengthRange): number {
  return range.low + Math.floor(random.nextFloat() * (range.high - range.low + 1));
}

export function randomTokens(random: RequestGenerator, length: number, vocabSize: number): number[] {
  return Array.from({ length }, () => Math.floor(random.nextFloat() * vocabSize));
}

export function randomRequests(random: RequestGenerator, count: number, input: LengthRange, output: LengthRange, vocabSize: number): BenchRequest[] {
  return Array.from({ length: count }, () => ({
    promptTokenIds: randomTokens(random, between(random, input), vocabSize),
    outputLen: between(random, output),
  }));
}

/**
 * The first `count` usable records of a JSONL file. A ShareGPT record's first human turn is the
 * prompt and its first reply's length the output length, as in vLLM; otherwise `output` decides.
 */
export async function fileRequests(
  path: string,
  tokenizer: ModelTokenizer,
  random: RequestGenerator,
  count: number,
  output: LengthRange,
  maxModelLen: number,
): Promise<BenchRequest[]> {
  const file = Bun.file(path);
  if (!(await file.exists())) throw new UsageError(`--dataset ${path}: file not found (or use --dataset random)`);
  const requests: BenchRequest[] = [];
  const lines = (await file.text()).split("\n");
  for (const [index, line] of lines.entries()) {
    if (requests.length === count) break;
    if (line.trim() === "") continue;
    let record: { prompt?: unknown; conversations?: { from?: unknown; value?: unknown }[] };
    try {
      record = JSON.parse(line);
    } catch {
      throw new UsageError(`--dataset ${path}, line ${index + 1}: not valid JSON`);
    }
    let prompt: string | undefined;
    let reply: string | undefined;
    if (typeof record.prompt === "string") prompt = record.prompt;
    else if (Array.isArray(record.conversations)) {
      const turns = record.conversations;
      const first = turns.findIndex((turn) => turn.from === "human" || turn.from === "user");
      if (first >= 0 && typeof turns[first]!.value === "string") prompt = turns[first]!.value as string;
      const answer = turns[first + 1];
      if (first >= 0 && typeof answer?.value === "string") reply = answer.value;
    } else {
      throw new UsageError(`--dataset ${path}, line ${index + 1}: expected {"prompt": "..."} or {"conversations": [{"from", "value"}]}`);
    }
    if (prompt === undefined) continue;
    const promptTokenIds = tokenizer.encode(prompt);
    const outputLen = reply !== undefined ? Math.max(1, tokenizer.encode(reply).length) : between(random, output);
    // Records that cannot run in this engine's context are skipped, as vLLM's sampler does.
    if (promptTokenIds.length === 0 || promptTokenIds.length + outputLen > maxModelLen) continue;
    requests.push({ promptTokenIds, outputLen });
  }
  if (requests.length === 0) throw new UsageError(`--dataset ${path}: no record fits --max-model-len ${maxModelLen}`);
  return requests;
}

/** The workload of `bench throughput` and friends, from their dataset arguments. */
export async function datasetRequests(
  args: DatasetArgs,
  options: { random: RequestGenerator; vocabSize: number; maxModelLen: number; tokenizer: () => Promise<ModelTokenizer> },
): Promise<BenchRequest[]> {
  const ratio = rangeRatio(args["range-ratio"]);
  const count = integer("num-prompts", args["num-prompts"], 1);
  const output = lengthRange("output-len", args["output-len"], ratio);
  if (args.dataset === "random") {
    const input = lengthRange("input-len", args["input-len"], ratio);
    if (input.high + output.high > options.maxModelLen) {
      throw new UsageError(`--input-len + --output-len reach ${input.high + output.high} tokens, more than --max-model-len ${options.maxModelLen}`);
    }
    return randomRequests(options.random, count, input, output, options.vocabSize);
  }
  return fileRequests(args.dataset, await options.tokenizer(), options.random, count, output, options.maxModelLen);
}
