// The chat loop: read a line, run it as a command or send it with the history, stream the answer.
// Ctrl-C while an answer streams aborts that request only; the chat goes on.
import type { ChatBackend } from "./backend.ts";
import { runCommand } from "./commands.ts";
import type { Conversation } from "./conversation.ts";
import type { ChatTerminal } from "./terminal.ts";

async function answer(
  backend: ChatBackend,
  conversation: Conversation,
  terminal: ChatTerminal,
  message: string,
): Promise<void> {
  conversation.addUser(message);
  const controller = new AbortController();
  const stop = () => controller.abort();
  // Only while answering: at the prompt, Ctrl-C keeps its meaning of quitting.
  process.on("SIGINT", stop);
  let text = "";
  try {
    for await (const piece of backend.stream(conversation.messages(), conversation.settings, controller.signal)) {
      text += piece;
      terminal.write(piece);
    }
    terminal.endAnswer(controller.signal.aborted);
    // An interrupted answer stays in the history as far as the user saw it.
    conversation.addAssistant(text);
  } catch (error) {
    if (text) terminal.endAnswer(false);
    // A failed turn is forgotten, so the next message does not carry it.
    conversation.dropLastUser();
    terminal.error(error instanceof Error ? error.message : String(error));
  } finally {
    process.off("SIGINT", stop);
  }
}

export async function runRepl(backend: ChatBackend, conversation: Conversation, terminal: ChatTerminal): Promise<void> {
  for (;;) {
    const line = await terminal.read();
    if (line === null) return;
    if (line.trim() === "") continue;
    const outcome = runCommand(conversation, line);
    if (outcome === null) await answer(backend, conversation, terminal, line);
    else if (outcome.kind === "exit") return;
    else if (outcome.kind === "error") terminal.error(outcome.text);
    else terminal.notice(outcome.text);
  }
}
