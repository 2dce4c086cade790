// Arguments shared by every command that runs a model (generate now; serve, chat and bench
// reuse them), named as in vLLM.
import type { ArgsDef } from "citty";
import { Backend } from "../backend/backend.ts";
import type { DtypeOption, LoadFormat } from "../model/load-model.ts";

export const modelArgs = {
  model: {
    type: "positional",
    required: false,
    description: "Local Hugging Face model directory (default: the embedded random-weight demo model, vllm-ts-demo)",
  },
  device: { type: "string", default: "auto", description: "auto | cpu | cuda" },
  dtype: { type: "string", default: "auto", description: "Weight dtype: auto | float32 | float16 | bfloat16" },
  "load-format": { type: "string", default: "auto", description: "auto | dummy (random weights of the model's shapes)" },
  seed: { type: "string", default: "0", description: "Random seed" },
  threads: { type: "string", default: "0", description: "CPU threads (0 = all cores)" },
} as const satisfies ArgsDef;

export interface ModelArgs {
  model?: string;
  device: string;
  dtype: string;
  "load-format": string;
  seed: string;
  threads: string;
}

export class UsageError extends Error {}

export function choice<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) throw new UsageError(`--${name} must be one of ${allowed.join(", ")}, got "${value}"`);
  return value as T;
}

export function integer(name: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got "${value}"`);
  return n;
}

export function number(name: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) throw new UsageError(`--${name} must be a number >= ${min}, got "${value}"`);
  return n;
}

export function loadOptions(args: ModelArgs) {
  return {
    dtype: choice<DtypeOption>("dtype", args.dtype, ["auto", "float32", "float16", "bfloat16"]),
    loadFormat: choice<LoadFormat>("load-format", args["load-format"], ["auto", "dummy"]),
    seed: integer("seed", args.seed, 0),
  };
}

export function openBackend(args: ModelArgs): Promise<Backend> {
  const device = choice("device", args.device, ["auto", "cpu", "cuda"] as const);
  return Backend.open({ device, numThreads: integer("threads", args.threads, 0) });
}
