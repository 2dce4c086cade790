// Logs go to stderr so that a command's output on stdout stays clean for pipes. serve sets their
// level and format (--log-level, --log-format); the engine core's thread is told the same settings
// when it starts, so that its lines (a failed step, a captured graph) read like the others.
import { createConsola, LogLevels } from "consola";
import { jsonLogReporter } from "./json-log-reporter.ts";

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ["text", "json"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LogSettings {
  level: LogLevel;
  format: LogFormat;
}

export const logger = createConsola({ stdout: process.stderr, stderr: process.stderr });

const textReporters = logger.options.reporters;
let settings: LogSettings | null = null;

export function configureLogger(next: LogSettings): void {
  logger.level = LogLevels[next.level];
  logger.setReporters(next.format === "json" ? [jsonLogReporter(process.stderr)] : textReporters);
  settings = next;
}

/** What configureLogger set, to hand to another thread; null while consola's defaults hold. */
export function loggerSettings(): LogSettings | null {
  return settings;
}

/**
 * A record of a message and machine-readable fields (snake_case names, as log collectors expect):
 * the JSON format writes the fields beside the message, the text format the message alone.
 */
export function withFields(message: string, fields: Record<string, unknown>): { message: string; fields: object } {
  return { message, fields };
}
