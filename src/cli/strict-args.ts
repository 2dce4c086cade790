// vLLM's command line refuses what it does not know (argparse's "unrecognized arguments"); citty
// ignores it, so a typo kept its default and the value after an unknown flag became the model
// path. Every command line is checked against its command's definition before the command runs.
import type { ArgsDef, CommandDef, Resolvable } from "citty";
import { UNSUPPORTED_VLLM_FLAGS } from "./vllm-flags.ts";

/** A command line its command cannot take; exits with status 2, as argparse does. */
export class ArgumentError extends Error {}

async function resolved<T>(value: Resolvable<T> | undefined): Promise<T | undefined> {
  return typeof value === "function" ? await (value as () => T | Promise<T>)() : await value;
}

/** The command rawArgs name (following subcommand names), its name path, and the arguments left for it. */
export async function resolveCommand(
  root: CommandDef,
  rawArgs: readonly string[],
): Promise<{ command: CommandDef; path: string[]; args: string[] }> {
  let command = root;
  let args = [...rawArgs];
  const path: string[] = [];
  for (;;) {
    const subCommands = await resolved(command.subCommands);
    const index = args.findIndex((arg) => !arg.startsWith("-"));
    const sub = subCommands && index >= 0 ? subCommands[args[index]!] : undefined;
    // An unknown subcommand is citty's to report.
    if (!sub) return { command, path, args };
    path.push(args[index]!);
    command = (await resolved(sub))!;
    args = [...args.slice(0, index), ...args.slice(index + 1)];
  }
}

/** A command's argument definitions. */
export async function commandArgs(command: CommandDef): Promise<ArgsDef> {
  return (await resolved(command.args)) ?? {};
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = row;
  }
  return previous[b.length]!;
}

function nearest(name: string, known: Iterable<string>): string | null {
  let best: { name: string; distance: number } | null = null;
  for (const candidate of known) {
    if (candidate.length < 2) continue;
    const d = candidate.startsWith(name) || name.startsWith(candidate) ? 1 : distance(name, candidate);
    if (d <= Math.max(2, Math.floor(candidate.length / 4)) && (!best || d < best.distance))
      best = { name: candidate, distance: d };
  }
  return best?.name ?? null;
}

/** Throws ArgumentError for unknown flags, vLLM flags not implemented, and positionals beyond those declared. */
export function checkArguments(argsDef: ArgsDef, args: readonly string[]): void {
  // citty answers --help (-h) on every command and --version on the top one.
  const flags = new Map<string, "string" | "boolean">([
    ["help", "boolean"],
    ["h", "boolean"],
    ["version", "boolean"],
  ]);
  let numPositionals = 0;
  for (const [name, def] of Object.entries(argsDef)) {
    if (def.type === "positional") {
      numPositionals++;
      // citty reads `--model DIR` as the positional MODEL too (serve takes it repeated).
      flags.set(name, "string");
      continue;
    }
    const kind = def.type === "boolean" ? "boolean" : "string";
    const aliases = "alias" in def && def.alias !== undefined ? [def.alias].flat() : [];
    for (const key of [name, ...aliases]) flags.set(key, kind);
  }
  const unknown: string[] = [];
  const extra: string[] = [];
  let positionals = 0;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") break;
    const isFlag = arg.startsWith("-") && arg.length > 1 && !/^-\d/.test(arg);
    if (!isFlag) {
      if (++positionals > numPositionals) extra.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, "");
    const equals = body.indexOf("=");
    const name = equals >= 0 ? body.slice(0, equals) : body;
    const next = args[i + 1];
    const nextIsValue = equals < 0 && next !== undefined && !next.startsWith("-");
    const inlineValue = equals >= 0 ? body.slice(equals + 1) : undefined;
    let kind = flags.get(name);
    if (!kind && name.startsWith("no-") && flags.get(name.slice(3)) === "boolean") kind = "boolean";
    if (kind === "string" && equals < 0) i++;
    if (kind) continue;
    const unsupported = UNSUPPORTED_VLLM_FLAGS[name];
    const value = inlineValue ?? (nextIsValue ? next : undefined);
    if (nextIsValue) i++; // an unknown flag's value is its own, never a positional
    if (unsupported?.accepts?.(value)) continue;
    if (unsupported) throw new ArgumentError(`--${name}: ${unsupported.reason}`);
    const suggestion = nearest(name, flags.keys());
    unknown.push(`--${name}${suggestion ? ` (did you mean --${suggestion}?)` : ""}`);
  }
  const unrecognized = [...unknown, ...extra];
  if (unrecognized.length > 0) throw new ArgumentError(`unrecognized arguments: ${unrecognized.join(", ")}`);
}
