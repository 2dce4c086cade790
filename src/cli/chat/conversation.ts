// A chat's state: the system prompt, the turns so far and the sampling settings the user chose.
// Both backends take the same messages and settings, so the REPL never knows which one it drives.
import type { ChatMessage } from "../../model/chat-template.ts";

/** Unset fields fall back to the server's (or the model's generation_config) defaults. */
export interface ChatSettings {
  temperature?: number;
  maxTokens?: number;
  topP?: number;
  seed?: number;
}

export class Conversation {
  private turns: ChatMessage[] = [];

  constructor(
    public system: string | null,
    readonly settings: ChatSettings,
  ) {}

  /** What the model sees: the system prompt, then every turn in order. */
  messages(): ChatMessage[] {
    return this.system ? [{ role: "system", content: this.system }, ...this.turns] : [...this.turns];
  }

  addUser(content: string): void {
    this.turns.push({ role: "user", content });
  }

  addAssistant(content: string): void {
    this.turns.push({ role: "assistant", content });
  }

  /** Takes back the last user turn, when its answer failed before any text came. */
  dropLastUser(): void {
    if (this.turns.at(-1)?.role === "user") this.turns.pop();
  }

  /** Forgets every turn; the system prompt and settings stay. */
  reset(): void {
    this.turns = [];
  }
}
