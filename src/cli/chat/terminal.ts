// Where the REPL reads lines and writes answers. At a terminal: @clack/prompts for input and
// notices. Through a pipe: one message per input line, stdout carries only the answers (each
// ended by a newline) and everything else goes to stderr, so a chat can be scripted.
import { createInterface } from "node:readline";
import { intro, isCancel, log, spinner, text, updateSettings } from "@clack/prompts";

export interface ChatTerminal {
  /** The next line the user sends, or null when they are done (EOF, Ctrl-D, Ctrl-C at the prompt). */
  read(): Promise<string | null>;
  notice(message: string): void;
  error(message: string): void;
  /** Shows progress while `task` runs (the model loading, the server answering /v1/models). */
  during<T>(label: string, task: Promise<T>): Promise<T>;
  /** One piece of the answer being streamed. */
  write(piece: string): void;
  /** Closes the answer; `stopped` when the user interrupted it. */
  endAnswer(stopped: boolean): void;
}

function interactiveTerminal(): ChatTerminal {
  // Ctrl-D at the prompt quits as at a shell; clack only knows Ctrl-C and Escape.
  updateSettings({ aliases: { "\x04": "cancel" } });
  let started = false;
  return {
    async read() {
      const value = await text({ message: "You", placeholder: "a message, or /help" });
      return isCancel(value) ? null : (value ?? "");
    },
    notice: (message) => log.info(message),
    error: (message) => log.error(message),
    async during(label, task) {
      if (!started) intro("vllm-ts chat");
      started = true;
      const progress = spinner();
      progress.start(label);
      try {
        const result = await task;
        progress.stop(label);
        return result;
      } catch (error) {
        progress.error(label);
        throw error;
      }
    },
    write: (piece) => process.stdout.write(piece),
    endAnswer(stopped) {
      process.stdout.write("\n");
      if (stopped) log.warn("stopped");
    },
  };
}

function pipedTerminal(): ChatTerminal {
  const lines = createInterface({ input: process.stdin, terminal: false })[Symbol.asyncIterator]();
  return {
    async read() {
      const next = await lines.next();
      return next.done ? null : next.value;
    },
    notice: (message) => process.stderr.write(`${message}\n`),
    error: (message) => process.stderr.write(`error: ${message}\n`),
    during: (_label, task) => task,
    write: (piece) => process.stdout.write(piece),
    endAnswer: () => process.stdout.write("\n"),
  };
}

export function openTerminal(): ChatTerminal {
  return process.stdin.isTTY ? interactiveTerminal() : pipedTerminal();
}
