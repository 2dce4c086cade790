// Runs one command of the GPU check under a time limit: its output goes to a log file (kept
// whatever happens), and at the limit the command and every process it started are killed, so a
// hung kernel or server cannot eat the time of the stages after it.
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";

export interface CommandResult {
  exitCode: number | null;
  timedOut: boolean;
  seconds: number;
  /** The last lines of the log, for the report. */
  tail: string;
}

export interface CommandOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  timeoutSeconds: number;
  /** Appended to, so several commands of a stage share one log. */
  logFile: string;
}

const TAIL_LINES = 40;

export function logTail(logFile: string, lines = TAIL_LINES): string {
  try {
    return readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

export async function runCommand(argv: string[], options: CommandOptions): Promise<CommandResult> {
  const started = performance.now();
  const log = openSync(options.logFile, "a");
  // Its own process group (detached), so the kill at the limit reaches the grandchildren too.
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: options.cwd,
    env: Object.fromEntries(Object.entries(options.env ?? process.env).filter(([, v]) => v !== undefined)) as Record<
      string,
      string
    >,
    stdio: ["ignore", log, log],
    detached: true,
  });
  let timedOut = false;
  const exitCode = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, Math.max(1, options.timeoutSeconds) * 1000);
    child.on("error", () => {
      clearTimeout(timer);
      resolve(null);
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      // Leftovers of a command that exited (a server it started, say) go with it.
      killGroup(child.pid);
      resolve(code ?? (signal ? 128 : null));
    });
  });
  closeSync(log);
  return { exitCode, timedOut, seconds: (performance.now() - started) / 1000, tail: logTail(options.logFile) };
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // The group is already gone.
  }
}
