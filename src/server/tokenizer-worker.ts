// The tokenizer thread's entry (see tokenizer-thread.ts): long prompts are encoded, long
// conversations rendered and long token lists decoded here, so that the HTTP thread stays free to
// answer /health and to stream other requests meanwhile.
import { ChatTemplateError, type ChatTemplateInput, renderChatTemplate } from "../model/chat-template.ts";
import type { ModelSource } from "../model/load-model.ts";
import { loadModelTokenizer } from "../model/load-tokenizer.ts";
import type { ModelTokenizer } from "../model/tokenizer.ts";

declare const self: Worker;

export type TokenizerJob =
  | { kind: "encode"; text: string; addSpecialTokens: boolean }
  /** The input as JSON text: structured cloning 100k messages cost the HTTP thread 5x more. */
  | { kind: "chat"; template: string | null; inputJson: string }
  | { kind: "decode"; tokenIds: Int32Array<ArrayBuffer>; skipSpecialTokens: boolean };

export type ToTokenizer =
  /** The model's tokenizer, as the engine client loads it (--tokenizer included). */
  { type: "init"; source: ModelSource; tokenizer: string | undefined } | { type: "job"; id: number; job: TokenizerJob };

export type FromTokenizer =
  | { id: number; tokenIds: Int32Array<ArrayBuffer> | null; text: string | null }
  | { id: number; error: string; isChatTemplateError: boolean };

let tokenizer: Promise<ModelTokenizer> | null = null;

async function run(job: TokenizerJob): Promise<{ tokenIds: Int32Array<ArrayBuffer> | null; text: string | null }> {
  const loaded = await tokenizer!;
  switch (job.kind) {
    case "encode":
      return {
        tokenIds: Int32Array.from(loaded.encode(job.text, { addSpecialTokens: job.addSpecialTokens })),
        text: null,
      };
    case "chat": {
      const prompt = renderChatTemplate(job.template, JSON.parse(job.inputJson) as ChatTemplateInput);
      // The template writes the special tokens itself.
      return { tokenIds: Int32Array.from(loaded.encode(prompt, { addSpecialTokens: false })), text: prompt };
    }
    case "decode":
      return {
        tokenIds: null,
        text: loaded.decode(Array.from(job.tokenIds), { skipSpecialTokens: job.skipSpecialTokens }),
      };
  }
}

self.onmessage = async (event: MessageEvent<ToTokenizer>) => {
  const message = event.data;
  if (message.type === "init") {
    tokenizer = loadModelTokenizer(message.source, message.tokenizer);
    return;
  }
  const { id, job } = message;
  try {
    const result = await run(job);
    const transfer = result.tokenIds ? [result.tokenIds.buffer] : [];
    self.postMessage({ id, ...result } satisfies FromTokenizer, transfer);
  } catch (error) {
    self.postMessage({
      id,
      error: error instanceof Error ? error.message : String(error),
      isChatTemplateError: error instanceof ChatTemplateError,
    } satisfies FromTokenizer);
  }
};
