// What the REPL needs from a model: the in-process engine and a remote server both stream an
// answer's text for a conversation, and stop when the signal aborts.
import type { ChatMessage } from "../../model/chat-template.ts";
import type { ChatSettings } from "./conversation.ts";

export interface ChatBackend {
  /** The model's name, as the server serves it or as the engine loaded it. */
  readonly modelName: string;
  /** The answer's text, piece by piece; ends early, without error, once `signal` aborts. */
  stream(messages: ChatMessage[], settings: ChatSettings, signal: AbortSignal): AsyncIterable<string>;
  close(): Promise<void>;
}
