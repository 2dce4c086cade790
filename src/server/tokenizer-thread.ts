// A served model's tokenizer thread: the API side's handle on tokenizer-worker.ts. One thread per
// model, started on first use (most servers never see a prompt long enough to need it) with its
// own copy of the tokenizer; jobs run in arrival order. A thread that fails fails the jobs it holds,
// and the next job starts a fresh one.

import { threadEntry } from "../engine/thread-entry.ts";
import { ChatTemplateError, type ChatTemplateInput } from "../model/chat-template.ts";
import type { ModelSource } from "../model/load-model.ts";
import type { FromTokenizer, TokenizerJob, ToTokenizer } from "./tokenizer-worker.ts";

type Reply = { tokenIds: Int32Array<ArrayBuffer> | null; text: string | null };

export class TokenizerThread {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
  private nextId = 0;

  constructor(
    private readonly source: ModelSource,
    private readonly tokenizer: string | undefined,
  ) {}

  async encode(text: string, addSpecialTokens: boolean): Promise<number[]> {
    const { tokenIds } = await this.run({ kind: "encode", text, addSpecialTokens });
    return Array.from(tokenIds!);
  }

  /** The chat template's prompt and its token ids. */
  async renderChat(template: string | null, input: ChatTemplateInput): Promise<{ prompt: string; tokenIds: number[] }> {
    const { tokenIds, text } = await this.run({ kind: "chat", template, inputJson: JSON.stringify(input) });
    return { prompt: text!, tokenIds: Array.from(tokenIds!) };
  }

  async decode(tokenIds: readonly number[], skipSpecialTokens: boolean): Promise<string> {
    const { text } = await this.run({ kind: "decode", tokenIds: Int32Array.from(tokenIds), skipSpecialTokens });
    return text!;
  }

  close(): void {
    this.worker?.terminate();
    this.worker = null;
    this.failPending(new Error("the tokenizer thread is closed"));
  }

  private run(job: TokenizerJob): Promise<Reply> {
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      const transfer = job.kind === "decode" ? [job.tokenIds.buffer] : [];
      worker.postMessage({ type: "job", id, job } satisfies ToTokenizer, transfer);
    });
  }

  private start(): Worker {
    const worker = new Worker(threadEntry("server/tokenizer-worker.ts"));
    worker.onmessage = (event: MessageEvent<FromTokenizer>) => {
      const reply = event.data;
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (!waiter) return;
      if ("error" in reply)
        waiter.reject(reply.isChatTemplateError ? new ChatTemplateError(reply.error) : new Error(reply.error));
      else waiter.resolve(reply);
    };
    worker.onerror = (event) => {
      worker.terminate();
      if (this.worker === worker) this.worker = null;
      this.failPending(new Error(`the tokenizer thread failed: ${event.message}`));
    };
    // The server's exit must not wait for this thread.
    worker.unref();
    worker.postMessage({ type: "init", source: this.source, tokenizer: this.tokenizer } satisfies ToTokenizer);
    this.worker = worker;
    return worker;
  }

  private failPending(error: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }
}
