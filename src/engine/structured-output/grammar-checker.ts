// The API side's handle on the grammar-checking thread (grammar-check-worker.ts): one thread,
// started on first use and retired after a source it refused (xgrammar aborted in it): later
// checks go to a fresh thread, and the retired one ends once its own checks are answered.

import { threadEntry } from "../thread-entry.ts";
import type { GrammarCheckRequest, GrammarCheckResult } from "./grammar-check-worker.ts";
import type { GrammarSource } from "./structured-outputs.ts";

class CheckThread {
  readonly worker = new Worker(threadEntry("engine/structured-output/grammar-check-worker.ts"));
  readonly pending = new Map<number, (error: string | null) => void>();
  retired = false;

  constructor() {
    this.worker.onmessage = (event: MessageEvent<GrammarCheckResult>) => {
      const { id, error } = event.data;
      if (error !== null) this.retired = true;
      this.settle(id, error);
    };
    this.worker.onerror = (event) => {
      this.retired = true;
      for (const id of [...this.pending.keys()]) this.settle(id, `the grammar checker failed: ${event.message}`);
    };
    // The server's exit must not wait for this thread.
    this.worker.unref();
  }

  private settle(id: number, error: string | null): void {
    this.pending.get(id)?.(error);
    this.pending.delete(id);
    if (this.retired && this.pending.size === 0) this.worker.terminate();
  }
}

export class GrammarChecker {
  private thread: CheckThread | null = null;
  private nextId = 0;

  /** xgrammar's message for an invalid source, or null. */
  check(source: GrammarSource): Promise<string | null> {
    if (!this.thread || this.thread.retired) this.thread = new CheckThread();
    const thread = this.thread;
    const id = this.nextId++;
    return new Promise((resolve) => {
      thread.pending.set(id, resolve);
      thread.worker.postMessage({ id, source } satisfies GrammarCheckRequest);
    });
  }
}
