// The command-line flags of every command that runs a model (serve, chat, generate, bench),
// derived from the engine's option tables (src/engine/options.ts) and read back into CoreOptions
// with a message naming the flag for a bad value; plus the value parsers commands use for their
// own flags.
import type { ArgsDef } from "citty";
import type { CoreOptions } from "../engine/core-protocol.ts";
import {
  ENGINE_OPTIONS,
  flagOf,
  MODEL_OPTIONS,
  type OptionSpec,
  type OptionTable,
  type OptionValues,
} from "../engine/options.ts";
import { UsageError } from "../usage-error.ts";

export function choice<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T))
    throw new UsageError(`--${name} must be one of ${allowed.join(", ")}, got "${value}"`);
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

export function fraction(name: string, value: string): number {
  const n = Number(value);
  if (!(n > 0 && n <= 1)) throw new UsageError(`--${name} must be in (0, 1], got "${value}"`);
  return n;
}

const byteUnits: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
};

export function bytes(name: string, value: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
  const unit = match ? byteUnits[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined)
    throw new UsageError(`--${name} must be a size like 4GiB or 500000000, got "${value}"`);
  return Math.floor(Number(match[1]) * unit);
}

/** citty's definition of one option's flag: booleans as switches, everything else as text. */
function flagDefinition(flag: string, spec: OptionSpec) {
  if (spec.value.kind === "boolean") {
    const negation = spec.default === true ? ` (--no-${flag} to turn off)` : "";
    return {
      type: "boolean" as const,
      default: spec.default as boolean | undefined,
      description: spec.description + negation,
    };
  }
  const choices = spec.value.kind === "choice" ? ` (${spec.value.choices.join(" | ")})` : "";
  return {
    type: "string" as const,
    default: spec.default === undefined ? undefined : String(spec.default),
    description: spec.description + choices,
  };
}

function flagsOf(table: OptionTable): ArgsDef {
  return Object.fromEntries(
    Object.entries(table).map(([key, spec]) => [flagOf(key, spec), flagDefinition(flagOf(key, spec), spec)]),
  );
}

/** The typed options of `table` from citty's parsed flags; flags not given and without a default are left out. */
export function optionsFromFlags<T extends OptionTable>(
  table: T,
  args: Record<string, unknown>,
): Partial<OptionValues<T>> {
  const values: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(table)) {
    const flag = flagOf(key, spec);
    const raw = args[flag];
    if (raw === undefined) continue;
    const text = String(raw);
    const value = spec.value;
    values[key] =
      value.kind === "boolean"
        ? raw === true || raw === "true"
        : value.kind === "integer"
          ? integer(flag, text, value.min)
          : value.kind === "fraction"
            ? fraction(flag, text)
            : value.kind === "choice"
              ? choice(flag, text, value.choices)
              : value.kind === "bytes"
                ? bytes(flag, text)
                : text;
  }
  return values as Partial<OptionValues<T>>;
}

export const modelArgs = {
  model: {
    type: "positional",
    required: false,
    description:
      "Local Hugging Face model directory, a .gguf file, or hub repo id Org/Name[:QUANT][@revision] (default: the embedded random-weight demo model, vllm-ts-demo)",
  },
  ...flagsOf(MODEL_OPTIONS),
} as const satisfies ArgsDef;

/** The engine's scheduling and memory flags (serve, bench, chat, generate). */
export const engineArgs = flagsOf(ENGINE_OPTIONS);

/** Everything the engine core takes, from the shared model and engine flags of a command. */
export function coreOptions(args: Record<string, unknown>): CoreOptions {
  const model = args.model;
  return {
    ...(typeof model === "string" ? { model } : {}),
    ...optionsFromFlags(MODEL_OPTIONS, args),
    ...optionsFromFlags(ENGINE_OPTIONS, args),
  };
}
