// Arguments shared by every command that runs a model (generate now; serve, chat and bench
// reuse them), named as in vLLM.
import type { ArgsDef } from "citty";
import type { CoreOptions } from "../engine/core-protocol.ts";
import type { DtypeOption, LoadFormat } from "../model/load-model.ts";

export const modelArgs = {
  model: {
    type: "positional",
    required: false,
    description: "Local Hugging Face model directory or hub repo id Org/Name[@revision] (default: the embedded random-weight demo model, vllm-ts-demo)",
  },
  device: { type: "string", default: "auto", description: "auto | cpu | cuda" },
  dtype: { type: "string", default: "auto", description: "Weight dtype: auto | float32 | float16 | bfloat16" },
  "load-format": { type: "string", default: "auto", description: "auto | dummy (random weights of the model's shapes)" },
  seed: { type: "string", default: "0", description: "Random seed" },
  threads: { type: "string", default: "0", description: "CPU threads (0 = all cores)" },
  tokenizer: {
    type: "string",
    description: "Use this tokenizer instead of the model's: a folder with tokenizer.json, or vllm-ts-demo (the embedded Qwen3 one)",
  },
  "generation-config": {
    type: "string",
    default: "auto",
    description: "Sampling defaults: auto (the model's generation_config.json) | vllm (ignore it) | a folder holding one",
  },
} as const satisfies ArgsDef;

/** The engine's scheduling and memory options (serve, bench, chat, generate). */
export const engineArgs = {
  "block-size": { type: "string", default: "16", description: "Tokens per KV-cache block" },
  "max-num-seqs": { type: "string", default: "64", description: "Most sequences running in one step" },
  "max-num-batched-tokens": { type: "string", default: "2048", description: "Token budget of one step" },
  "max-model-len": { type: "string", description: "Longest prompt + output (default: the model's max_position_embeddings)" },
  "enable-prefix-caching": { type: "boolean", default: true, description: "Reuse KV blocks of shared prefixes (--no-enable-prefix-caching to turn off)" },
  "enable-chunked-prefill": { type: "boolean", default: true, description: "Split long prompts over several steps" },
  scheduling: { type: "string", default: "continuous", description: "continuous | static (the traditional baseline, for benchmarks)" },
  "kv-cache-memory": { type: "string", description: "KV-cache size in bytes (suffixes K, M, G, KiB, MiB, GiB)" },
  "gpu-memory-utilization": { type: "string", default: "0.9", description: "Fraction of device memory for weights, activations and KV cache" },
  "enforce-eager": { type: "boolean", default: false, description: "CUDA: run decode steps op by op instead of replaying captured graphs" },
} as const satisfies ArgsDef;

export interface EngineArgs {
  "block-size": string;
  "max-num-seqs": string;
  "max-num-batched-tokens": string;
  "max-model-len"?: string;
  "enable-prefix-caching": boolean;
  "enable-chunked-prefill": boolean;
  scheduling: string;
  "kv-cache-memory"?: string;
  "gpu-memory-utilization": string;
  "enforce-eager": boolean;
}

export interface ModelArgs {
  model?: string;
  device: string;
  dtype: string;
  "load-format": string;
  seed: string;
  threads: string;
  "generation-config": string;
  tokenizer?: string;
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

const byteUnits: Record<string, number> = {
  "": 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30,
};

export function bytes(name: string, value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
  const unit = match ? byteUnits[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) throw new UsageError(`--${name} must be a size like 4GiB or 500000000, got "${value}"`);
  return Math.floor(Number(match[1]) * unit);
}

/** Everything the engine core takes, from the shared model and engine arguments. */
export function coreOptions(args: ModelArgs & EngineArgs): CoreOptions {
  const utilization = number("gpu-memory-utilization", args["gpu-memory-utilization"], 0);
  if (utilization <= 0 || utilization > 1) throw new UsageError(`--gpu-memory-utilization must be in (0, 1], got ${utilization}`);
  return {
    ...loadOptions(args),
    model: args.model,
    generationConfig: args["generation-config"],
    tokenizer: args.tokenizer,
    device: choice("device", args.device, ["auto", "cpu", "cuda"] as const),
    numThreads: integer("threads", args.threads, 0),
    blockSize: integer("block-size", args["block-size"], 1),
    maxNumSeqs: integer("max-num-seqs", args["max-num-seqs"], 1),
    maxNumBatchedTokens: integer("max-num-batched-tokens", args["max-num-batched-tokens"], 1),
    maxModelLen: args["max-model-len"] === undefined ? undefined : integer("max-model-len", args["max-model-len"], 1),
    enablePrefixCaching: args["enable-prefix-caching"],
    enableChunkedPrefill: args["enable-chunked-prefill"],
    scheduling: choice("scheduling", args.scheduling, ["continuous", "static"] as const),
    kvCacheMemory: args["kv-cache-memory"] === undefined ? undefined : bytes("kv-cache-memory", args["kv-cache-memory"]),
    gpuMemoryUtilization: utilization,
    enforceEager: args["enforce-eager"],
  };
}
