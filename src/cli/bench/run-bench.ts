// How the in-process bench commands fail: a bad flag or a failed benchmark alike is its message on
// stderr and exit status 1, with no stack trace.
import { logger } from "../../logger.ts";

/** Runs a bench command's body; a failure is one line on stderr and exit status 1. */
export async function runBench(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    logger.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  }
}
