// serve's log settings: --log-level, or vLLM's VLLM_LOGGING_LEVEL when the flag is absent, and
// --log-format. The environment variable takes Python's level names as vLLM's does (WARNING,
// CRITICAL), in any case; a value neither knows stops the server with the accepted ones.
import { LOG_FORMATS, LOG_LEVELS, type LogLevel, type LogSettings } from "../logger.ts";
import { UsageError } from "../usage-error.ts";
import { choice } from "./engine-args.ts";

const PYTHON_LEVEL_NAMES: Record<string, LogLevel> = { warning: "warn", critical: "error" };

function logLevel(source: string, value: string): LogLevel {
  const name = value.trim().toLowerCase();
  const level = PYTHON_LEVEL_NAMES[name] ?? LOG_LEVELS.find((known) => known === name);
  if (level === undefined)
    throw new UsageError(`${source} must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(value)}`);
  return level;
}

export function logSettings(
  levelFlag: string | undefined,
  formatFlag: string,
  env: Record<string, string | undefined> = process.env,
): LogSettings {
  const envLevel = env.VLLM_LOGGING_LEVEL;
  const level =
    levelFlag !== undefined
      ? logLevel("--log-level", levelFlag)
      : envLevel !== undefined
        ? logLevel("VLLM_LOGGING_LEVEL", envLevel)
        : "info";
  return { level, format: choice("log-format", formatFlag, LOG_FORMATS) };
}
