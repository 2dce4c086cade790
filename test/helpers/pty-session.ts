// Runs a command under a pseudo-terminal, as a user at a terminal would, through util-linux
// `script`: keys are typed into the terminal, its screen output is collected with the escape
// codes stripped, and tests wait for text to appear.
import type { Subprocess } from "bun";

// biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape sequences start with ESC.
const ESCAPE_CODES = /\x1b\[[0-9;?]*[A-Za-z]/g;
const WAIT_TIMEOUT_MS = 15_000;

export interface PtySession {
  /** Everything shown so far, without escape codes, with the terminal's \r\n as \n. */
  screen(): string;
  /** Keys as typed: "\r" is Enter, "\x03" Ctrl-C, "\x04" Ctrl-D. */
  type(keys: string): void;
  /** Resolves once `text` shows at or after `from` (an offset into screen()); returns where it ends. */
  waitFor(text: string, from?: number): Promise<number>;
  exited: Promise<number>;
  kill(): void;
}

export function hasScript(): boolean {
  return Bun.which("script") !== null;
}

const shellQuote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;

export function startPty(argv: string[]): PtySession {
  // A pty made by `script` has no size; prompts that wrap to the width need one.
  const command = `stty cols 120 rows 40; exec ${argv.map(shellQuote).join(" ")}`;
  const child: Subprocess<"pipe", "pipe", "inherit"> = Bun.spawn(["script", "-qfc", command, "/dev/null"], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "inherit",
  });
  let raw = "";
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stdout) raw += decoder.decode(chunk, { stream: true });
  })();
  const screen = () => raw.replace(ESCAPE_CODES, "").replaceAll("\r\n", "\n");
  return {
    screen,
    type(keys) {
      child.stdin.write(keys);
      child.stdin.flush();
    },
    async waitFor(text, from = 0) {
      const deadline = Date.now() + WAIT_TIMEOUT_MS;
      for (;;) {
        const at = screen().indexOf(text, from);
        if (at >= 0) return at + text.length;
        if (Date.now() > deadline || child.exitCode !== null) {
          throw new Error(`the terminal never showed ${JSON.stringify(text)}; it shows:\n${screen().slice(from)}`);
        }
        await Bun.sleep(20);
      }
    },
    exited: child.exited,
    kill: () => child.kill(),
  };
}
