// The requests a benchmark runs: seeded random token ids of given lengths (vLLM's `--dataset
// random`), or prompts from a JSONL file ({"prompt": ...} lines or ShareGPT conversations).
import type { RequestGenerator } from "../engine/random.ts";
import type { ModelTokenizer } from "../model/tokenizer.ts";
import { UsageError } from "../usage-error.ts";

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

export function between(random: RequestGenerator, range: LengthRange): number {
  return range.low + Math.floor(random.nextFloat() * (range.high - range.low + 1));
}

export function randomTokens(random: RequestGenerator, length: number, vocabSize: number): number[] {
  return Array.from({ length }, () => Math.floor(random.nextFloat() * vocabSize));
}

export function randomRequests(
  random: RequestGenerator,
  count: number,
  input: LengthRange,
  output: LengthRange,
  vocabSize: number,
): BenchRequest[] {
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
      throw new UsageError(
        `--dataset ${path}, line ${index + 1}: expected {"prompt": "..."} or {"conversations": [{"from", "value"}]}`,
      );
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

/**
 * What a benchmark's dataset flags ask for: `count` requests of `output` tokens each, their prompts
 * random token ids of `input` lengths or the records of a JSONL `file`.
 */
export type Workload = { count: number; output: LengthRange } & ({ input: LengthRange } | { file: string });

/** The workload's requests, each fitting `maxModelLen`; the tokenizer is loaded for a file only. */
export async function workloadRequests(
  workload: Workload,
  options: {
    random: RequestGenerator;
    vocabSize: number;
    maxModelLen: number;
    tokenizer: () => Promise<ModelTokenizer>;
  },
): Promise<BenchRequest[]> {
  const { count, output } = workload;
  if ("file" in workload)
    return fileRequests(workload.file, await options.tokenizer(), options.random, count, output, options.maxModelLen);
  const { input } = workload;
  if (input.high + output.high > options.maxModelLen) {
    throw new UsageError(
      `--input-len + --output-len reach ${input.high + output.high} tokens, more than --max-model-len ${options.maxModelLen}`,
    );
  }
  return randomRequests(options.random, count, input, output, options.vocabSize);
}
