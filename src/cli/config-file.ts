// vLLM's --config FILE.yaml: a mapping of flag names (kebab or snake case) to values, read as if
// given on the command line, where the command line's own flags win.
import { readFileSync } from "node:fs";
import { ArgumentError } from "./strict-args.ts";

/** The flag names a command line gives, negations included (--no-x gives x). */
function givenFlags(args: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const arg of args) {
    if (arg === "--") break;
    if (!arg.startsWith("--")) continue;
    const name = arg.slice(2).split("=")[0]!;
    names.add(name.startsWith("no-") ? name.slice(3) : name);
  }
  return names;
}

function readConfig(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ArgumentError(`--config ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = Bun.YAML.parse(text);
  } catch (error) {
    throw new ArgumentError(`--config ${path}: not YAML: ${(error as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
    throw new ArgumentError(`--config ${path}: expected a mapping of flag names to values`);
  return parsed as Record<string, unknown>;
}

/** The arguments with --config FILE replaced by the file's flags (those the command line lacks). */
export function expandConfigFile(args: readonly string[]): string[] {
  const index = args.findIndex((arg) => arg === "--config" || arg.startsWith("--config="));
  if (index < 0) return [...args];
  const inline = args[index]!.startsWith("--config=");
  const path = inline ? args[index]!.slice("--config=".length) : args[index + 1];
  if (!path) throw new ArgumentError("--config needs a YAML file");
  const rest = [...args.slice(0, index), ...args.slice(index + (inline ? 1 : 2))];
  const given = givenFlags(rest);
  const flags: string[] = [];
  for (const [key, value] of Object.entries(readConfig(path))) {
    const name = key.replaceAll("_", "-");
    if (given.has(name)) continue;
    if (value === true) flags.push(`--${name}`);
    else if (value === false) flags.push(`--no-${name}`);
    else if (value === null || value === undefined) throw new ArgumentError(`--config ${path}: ${key} has no value`);
    // Lists and mappings (e.g. --allowed-origins) as the JSON the flags take.
    else flags.push(`--${name}=${typeof value === "object" ? JSON.stringify(value) : String(value)}`);
  }
  return [...flags, ...rest];
}
