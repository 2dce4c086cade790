// Every option of an engine, written once: its key, its kind of value, its default and what it
// does, named as vLLM names them. The engine's config type and defaults, the command-line flags
// of serve, chat, generate and bench (src/cli/option-args.ts) and the --models-config schema
// (src/server/models-config.ts) are all derived from these two tables.
import { DTYPE_FLAG_NAMES } from "../backend/dtype.ts";
import { ALL_QUANT_FORMATS } from "../backend/weight-format.ts";

export type OptionValue =
  | { kind: "integer"; min: number }
  /** A fraction in (0, 1]. */
  | { kind: "fraction" }
  | { kind: "boolean" }
  | { kind: "choice"; choices: readonly string[] }
  /** A size in bytes: a number, or text with a unit ("4GiB"). */
  | { kind: "bytes" }
  | { kind: "text" };

export interface OptionSpec {
  value: OptionValue;
  /** Absent: the option is unset unless given (the engine decides, e.g. from the model). */
  default?: number | boolean | string;
  description: string;
  /** The command-line flag, when it is not the key in kebab case. */
  flag?: string;
}

export type OptionTable = Record<string, OptionSpec>;

export type ValueOf<V extends OptionValue> = V extends { kind: "boolean" }
  ? boolean
  : V extends { kind: "choice"; choices: readonly (infer C)[] }
    ? C
    : V extends { kind: "text" }
      ? string
      : number;

/** The typed values of a table's options: those without a default may be absent. */
export type OptionValues<T extends OptionTable> = {
  [K in keyof T as T[K] extends { default: unknown } ? K : never]: ValueOf<T[K]["value"]>;
} & {
  [K in keyof T as T[K] extends { default: unknown } ? never : K]?: ValueOf<T[K]["value"]>;
};

export const MODEL_OPTIONS = {
  device: {
    value: { kind: "choice", choices: ["auto", "cpu", "cuda"] },
    default: "auto",
    description: "Where the model runs; auto takes CUDA when a GPU is present",
  },
  dtype: {
    value: { kind: "choice", choices: ["auto", ...DTYPE_FLAG_NAMES] },
    default: "auto",
    description: "Weight dtype (auto: the checkpoint's torch_dtype)",
  },
  quantization: {
    value: { kind: "choice", choices: ALL_QUANT_FORMATS },
    description:
      "Quantize the linear layers on load into one of llama.cpp's formats (in-situ quantization; a layer whose input size is not whole blocks of 256 takes q5_0 for q4_k, q5_1 for q5_k, q8_0 for q6_k, as llama.cpp does); a GGUF file's own formats are kept unless this is given",
  },
  loadFormat: {
    value: { kind: "choice", choices: ["auto", "dummy"] },
    default: "auto",
    description: "dummy: random weights of the model's shapes",
  },
  seed: { value: { kind: "integer", min: 0 }, default: 0, description: "Random seed" },
  numThreads: {
    flag: "threads",
    value: { kind: "integer", min: 0 },
    default: 0,
    description: "CPU threads (0 = one per physical core)",
  },
  batchInvariant: {
    value: { kind: "boolean" },
    default: false,
    description:
      "Batch-invariant numerics (vLLM's VLLM_BATCH_INVARIANT): a sequence's tokens do not depend on what it is batched with, so a seeded request preempted and recomputed samples what it would have (CPU only; slower prefill)",
  },
  ggufFile: {
    value: { kind: "text" },
    description:
      "The GGUF file to load from the model's Hub repo or local folder (or pick it by quantization tag: Org/Name-GGUF:Q4_K_M)",
  },
  tokenizer: {
    value: { kind: "text" },
    description:
      "Use this tokenizer instead of the model's: a folder with tokenizer.json, or vllm-ts-demo (the embedded Qwen3 one)",
  },
  generationConfig: {
    value: { kind: "text" },
    default: "auto",
    description:
      "Sampling defaults: auto (the model's generation_config.json) | vllm (ignore it) | a folder holding one",
  },
} as const satisfies OptionTable;

export const ENGINE_OPTIONS = {
  blockSize: { value: { kind: "integer", min: 1 }, default: 16, description: "Tokens per KV-cache block" },
  maxNumSeqs: { value: { kind: "integer", min: 1 }, default: 64, description: "Most sequences running in one step" },
  maxNumBatchedTokens: {
    value: { kind: "integer", min: 1 },
    description:
      "Token budget of one step (default: 2048 on CUDA; 256 on the CPU, where a 2048-token prefill chunk would hold up the running decodes for seconds)",
  },
  maxModelLen: {
    value: { kind: "integer", min: 1 },
    description: "Longest prompt + output (default: the model's max_position_embeddings)",
  },
  enablePrefixCaching: { value: { kind: "boolean" }, default: true, description: "Reuse KV blocks of shared prefixes" },
  enableChunkedPrefill: {
    value: { kind: "boolean" },
    default: true,
    description: "Split long prompts over several steps",
  },
  scheduling: {
    value: { kind: "choice", choices: ["continuous", "static", "static-drop"] },
    default: "continuous",
    description:
      "Baselines for benchmarks, both forming whole batches with max-length KV reserved per sequence: static is Hugging Face generate()'s static batching (prompts padded to the batch's longest, finished rows computed until the batch ends, every output returned at the batch's end); static-drop stops computing a row once it finishes and returns it at once",
  },
  kvCacheMemory: {
    value: { kind: "bytes" },
    description: "KV-cache size in bytes (suffixes K, M, G, KiB, MiB, GiB; default: from --gpu-memory-utilization)",
  },
  gpuMemoryUtilization: {
    value: { kind: "fraction" },
    default: 0.9,
    description: "Fraction of device memory for weights, activations and KV cache",
  },
  asyncScheduling: {
    value: { kind: "boolean" },
    default: false,
    description:
      "Schedule the next step while the device computes the current one, and report each step while the next one computes (continuous scheduling only; steps with a grammar-constrained request still run in turns)",
  },
  enforceEager: {
    value: { kind: "boolean" },
    default: false,
    description: "Run decode steps op by op instead of replaying captured graphs",
  },
} as const satisfies OptionTable;

export type ModelOptions = OptionValues<typeof MODEL_OPTIONS>;
export type EngineConfig = OptionValues<typeof ENGINE_OPTIONS>;

/** The command-line flag of an option. */
export function flagOf(key: string, spec: OptionSpec): string {
  return spec.flag ?? key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

/** A table's defaults (options without one are left out). */
export function defaultsOf<T extends OptionTable>(table: T): OptionValues<T> {
  return Object.fromEntries(
    Object.entries(table)
      .filter(([, spec]) => spec.default !== undefined)
      .map(([key, spec]) => [key, spec.default]),
  ) as OptionValues<T>;
}

/** The options of `table` among `values` (the engine's part of a command's options, say). */
export function pickOptions<T extends OptionTable>(
  table: T,
  values: Partial<Record<keyof T, unknown>>,
): Partial<OptionValues<T>> {
  return Object.fromEntries(
    Object.keys(table)
      .filter((key) => values[key] !== undefined)
      .map((key) => [key, values[key]]),
  ) as Partial<OptionValues<T>>;
}

export const defaultEngineConfig: EngineConfig = defaultsOf(ENGINE_OPTIONS);
