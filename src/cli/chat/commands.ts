// The REPL's slash commands, as in `vllm chat` and most chat CLIs: each acts on the conversation
// and says what to tell the user; the loop decides where that goes (stderr when piped).
import type { ChatSettings, Conversation } from "./conversation.ts";

export type CommandOutcome = { kind: "exit" } | { kind: "notice"; text: string } | { kind: "error"; text: string };

const HELP = [
  "/help                 this list",
  "/reset                forget the conversation (the system prompt stays)",
  "/system TEXT          set the system prompt (/system alone removes it)",
  '/set NAME VALUE       temperature, max_tokens, top_p or seed (VALUE "default" unsets; /set alone shows them)',
  "/exit                 quit (also Ctrl-D; Ctrl-C stops an answer)",
].join("\n");

type SettingName = keyof ChatSettings;

/** Each setting's user-facing name, its field, and the check its value must pass. */
const SETTINGS: Record<string, { field: SettingName; parse: (value: string) => number | string }> = {
  temperature: { field: "temperature", parse: (v) => numberIn(v, (n) => n >= 0, "a number >= 0") },
  max_tokens: {
    field: "maxTokens",
    parse: (v) => numberIn(v, (n) => Number.isInteger(n) && n >= 1, "an integer >= 1"),
  },
  top_p: { field: "topP", parse: (v) => numberIn(v, (n) => n > 0 && n <= 1, "a number in (0, 1]") },
  seed: { field: "seed", parse: (v) => numberIn(v, Number.isSafeInteger, "an integer") },
};

/** The number, or the reason it is refused as a string. */
function numberIn(value: string, ok: (n: number) => boolean, expected: string): number | string {
  const n = Number(value);
  return value.trim() !== "" && Number.isFinite(n) && ok(n) ? n : `must be ${expected}, got "${value}"`;
}

function describeSettings(settings: ChatSettings): string {
  return Object.entries(SETTINGS)
    .map(([name, { field }]) => `${name} = ${settings[field] ?? "default"}`)
    .join(", ");
}

function set(conversation: Conversation, rest: string): CommandOutcome {
  if (rest === "") return { kind: "notice", text: describeSettings(conversation.settings) };
  const [name = "", value = "", ...extra] = rest.split(/\s+/);
  const setting = SETTINGS[name.replaceAll("-", "_")];
  if (!setting) return { kind: "error", text: `unknown setting "${name}": one of ${Object.keys(SETTINGS).join(", ")}` };
  if (extra.length > 0) return { kind: "error", text: `usage: /set ${name} VALUE` };
  if (value === "default") {
    delete conversation.settings[setting.field];
    return { kind: "notice", text: `${name} = default` };
  }
  const parsed = setting.parse(value);
  if (typeof parsed === "string") return { kind: "error", text: `${name} ${parsed}` };
  conversation.settings[setting.field] = parsed;
  return { kind: "notice", text: `${name} = ${parsed}` };
}

/** A line starting with "/" is a command; null means the line is a message for the model. */
export function runCommand(conversation: Conversation, line: string): CommandOutcome | null {
  const match = /^\/(\S+)\s*([\s\S]*)$/.exec(line.trim());
  if (!match) return null;
  const [, name, rest = ""] = match;
  switch (name) {
    case "help":
      return { kind: "notice", text: HELP };
    case "exit":
    case "quit":
      return { kind: "exit" };
    case "reset":
      conversation.reset();
      return { kind: "notice", text: "conversation cleared" };
    case "system":
      conversation.system = rest.trim() || null;
      return { kind: "notice", text: conversation.system ? "system prompt set" : "system prompt removed" };
    case "set":
      return set(conversation, rest.trim());
    default:
      return { kind: "error", text: `unknown command /${name}; /help lists them` };
  }
}
