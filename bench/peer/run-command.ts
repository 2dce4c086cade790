// Runs one benchmark command to its end and hands back what it printed; a failure throws with the
// command line and the end of its output, since a figure from a failed run must never be recorded.

export interface CommandOutput {
  stdout: string;
  stderr: string;
}

const TAIL_CHARACTERS = 3000;

export async function runCommand(argv: string[], env: Record<string, string> = {}): Promise<CommandOutput> {
  const child = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  if (exitCode !== 0) {
    const tail = `${stdout}\n${stderr}`.trim().slice(-TAIL_CHARACTERS);
    throw new Error(`${commandLine(argv)} exited with status ${exitCode}:\n${tail}`);
  }
  return { stdout, stderr };
}

/** The command as one shell line, for the report and for messages. */
export function commandLine(argv: string[]): string {
  return argv.map((arg) => (/^[\w./:=,+-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`)).join(" ");
}
