// The flags several bench commands share, and their reading into the options of src/bench: the
// dataset (vLLM's `--dataset random` or a JSONL file, with its lengths), `--output-json` and
// `--plot`.
import type { ArgsDef, ParsedArgs } from "citty";
import { STRUCTURED_OUTPUT_CHOICES } from "../../bench/structured-output.ts";
import type { LengthRange, Workload } from "../../bench/workload.ts";
import { UsageError } from "../../usage-error.ts";
import { integer, number } from "../engine-args.ts";

export const datasetArgs = {
  dataset: {
    type: "string",
    default: "random",
    description: 'random | a JSONL file of {"prompt": ...} lines or ShareGPT {"conversations": [...]} records',
  },
  "num-prompts": { type: "string", default: "100", description: "Requests to run" },
  "input-len": { type: "string", default: "128", description: "Prompt tokens of random requests: N, or LOW:HIGH" },
  "output-len": { type: "string", default: "128", description: "Tokens to generate (ignoring EOS): N, or LOW:HIGH" },
  "range-ratio": {
    type: "string",
    default: "0",
    description: "Random lengths are drawn uniformly from [N*(1-r), N*(1+r)]",
  },
} as const satisfies ArgsDef;

export type DatasetArgs = ParsedArgs<typeof datasetArgs>;

export const reportArgs = {
  "output-json": {
    type: "string",
    description: "Write every figure, the configuration and the device to this JSON file",
  },
} as const satisfies ArgsDef;

export const structuredOutputArgs = {
  "structured-output": {
    type: "string",
    description: `Constrain every request's output: ${STRUCTURED_OUTPUT_CHOICES} (json: a JSON schema of about --output-len tokens; FILE.json: a JSON schema)`,
  },
} as const satisfies ArgsDef;

export const plotArgs = {
  plot: {
    type: "string",
    description: "Draw the run's charts to this file: FILE.svg, or FILE.html for the SVG in a web page",
  },
} as const satisfies ArgsDef;

/** "N" with a range ratio r gives [N*(1-r), N*(1+r)]; "LOW:HIGH" gives itself. */
export function lengthRange(name: string, value: string, rangeRatio: number): LengthRange {
  const parts = value.split(":");
  if (parts.length === 2) {
    const low = integer(name, parts[0]!, 1);
    const high = integer(name, parts[1]!, low);
    return { low, high };
  }
  const length = integer(name, value, 1);
  return {
    low: Math.max(1, Math.floor(length * (1 - rangeRatio))),
    high: Math.max(1, Math.ceil(length * (1 + rangeRatio))),
  };
}

export function rangeRatio(value: string): number {
  const ratio = number("range-ratio", value, 0);
  if (ratio >= 1) throw new UsageError(`--range-ratio must be in [0, 1), got ${ratio}`);
  return ratio;
}

/** The workload of `bench throughput` and friends, from their dataset arguments. */
export function workloadOf(args: DatasetArgs): Workload {
  const ratio = rangeRatio(args["range-ratio"]);
  const count = integer("num-prompts", args["num-prompts"], 1);
  const output = lengthRange("output-len", args["output-len"], ratio);
  if (args.dataset !== "random") return { count, output, file: args.dataset };
  return { count, output, input: lengthRange("input-len", args["input-len"], ratio) };
}

/** The --plot file, checked before the benchmark runs rather than after. */
export function plotPath(value: string | undefined): string | undefined {
  if (value !== undefined && !/\.(svg|html?)$/i.test(value))
    throw new UsageError(`--plot ${value}: the file name must end in .svg or .html`);
  return value;
}
