// A request's text as token ids (and token ids as text) without holding the HTTP thread: text
// longer than any prompt the model can take is refused before it is read, and long text is encoded,
// long conversations rendered and long token lists decoded on the model's tokenizer thread. A
// 7.9 MB prompt held every route for seconds when this ran on the HTTP thread.
import type { ChatTemplateInput } from "../model/chat-template.ts";
import { renderChatTemplate } from "../model/chat-template.ts";
import { type ModelContext, maxModelLen } from "./context.ts";
import { ApiError } from "./errors.ts";

/**
 * Up to this much text is encoded on the HTTP thread: a few milliseconds, less than waiting behind
 * a long job on the tokenizer thread could cost.
 */
const INLINE_BYTES = 16 * 1024;
/** A conversation of up to this many messages and tools, and INLINE_BYTES of text, renders on the HTTP thread. */
const INLINE_CHAT_ITEMS = 64;
/** Up to this many token ids are decoded on the HTTP thread (a few milliseconds). */
const INLINE_TOKEN_IDS = 4096;

/**
 * Refuses text of more bytes than the model's longest possible prompt: no token stands for more
 * than maxBytesPerToken bytes of a client's text (the vocabulary's longest, times what the
 * normalizer may shrink text by), so such a text has more tokens than the context holds. The
 * bound is loose for real text (about 4 bytes a token) but never refuses a prompt that fits;
 * tokenization off the HTTP thread is what keeps the server responsive below it.
 */
export function checkTextSize(context: ModelContext, bytes: number, field: string): void {
  const perToken = context.engine.tokenizer.maxBytesPerToken;
  const contextLength = maxModelLen(context);
  if (perToken === null || bytes <= contextLength * perToken) return;
  throw new ApiError(
    400,
    `This model's maximum context length is ${contextLength} tokens, which no text of more than ` +
      `${contextLength * perToken} bytes fits in (no token of its vocabulary stands for more than ${perToken} bytes); ` +
      `your ${field} has ${bytes} bytes. Please reduce the length of the ${field}.`,
    field,
  );
}

export async function encodeText(
  context: ModelContext,
  text: string,
  { addSpecialTokens, field }: { addSpecialTokens: boolean; field: string },
): Promise<number[]> {
  const bytes = Buffer.byteLength(text);
  checkTextSize(context, bytes, field);
  const { tokenizerThread, engine } = context;
  if (tokenizerThread === null || bytes <= INLINE_BYTES) return engine.tokenizer.encode(text, { addSpecialTokens });
  return tokenizerThread.encode(text, addSpecialTokens);
}

/** A conversation's prompt and token ids; `bytes` is the size of its messages' text. */
export async function encodeChat(
  context: ModelContext,
  template: string | null,
  input: ChatTemplateInput,
  bytes: number,
): Promise<{ prompt: string; tokenIds: number[] }> {
  checkTextSize(context, bytes, "messages");
  const { tokenizerThread, engine } = context;
  const numItems = input.messages.length + (input.tools?.length ?? 0);
  if (tokenizerThread !== null && (bytes > INLINE_BYTES || numItems > INLINE_CHAT_ITEMS))
    return tokenizerThread.renderChat(template, input);
  const prompt = renderChatTemplate(template, input);
  // The template writes the special tokens itself.
  return { prompt, tokenIds: engine.tokenizer.encode(prompt, { addSpecialTokens: false }) };
}

export async function decodeTokenIds(
  context: ModelContext,
  tokenIds: readonly number[],
  skipSpecialTokens = false,
): Promise<string> {
  const { tokenizerThread, engine } = context;
  if (tokenizerThread === null || tokenIds.length <= INLINE_TOKEN_IDS)
    return engine.tokenizer.decode(tokenIds, { skipSpecialTokens });
  return tokenizerThread.decode(tokenIds, skipSpecialTokens);
}
