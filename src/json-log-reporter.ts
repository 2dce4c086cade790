// --log-format json: one JSON object per line for log collectors, with the record's time, level and
// message, then the fields a record carries (see withFields in logger.ts).
import { formatWithOptions } from "node:util";
import type { ConsolaReporter } from "consola";

/** consola's numeric levels (0 error, 1 warn, 2 log, 3 info, 4 debug, 5 trace) under their usual names. */
function levelName(level: number): string {
  if (level <= 0) return "error";
  if (level === 1) return "warn";
  return level <= 3 ? "info" : "debug";
}

export function jsonLogReporter(stream: { write(text: string): unknown }): ConsolaReporter {
  return {
    log(record) {
      const errors = record.args.filter((arg): arg is Error => arg instanceof Error);
      // An error's message stays in the line; its stack, many lines, goes to a field of its own.
      const args = record.args.map((arg) => (arg instanceof Error ? arg.message : arg));
      const fields = typeof record.fields === "object" && record.fields !== null ? record.fields : {};
      const line = {
        time: record.date.toISOString(),
        level: levelName(record.level),
        message: formatWithOptions({ colors: false, breakLength: Number.POSITIVE_INFINITY }, ...args),
        ...fields,
        ...(errors[0]?.stack === undefined ? {} : { stack: errors[0].stack }),
      };
      stream.write(`${JSON.stringify(line)}\n`);
    },
  };
}
