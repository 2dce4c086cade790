// A one-choice chat run read to its end, as the Responses and Messages APIs answer: whole, as the
// choice's final output and blocks, or streamed, as block events. Each keeps the run's usage.
import type { CompletionOutput } from "../engine/output-processor.ts";
import { ChatDeltaStream, chatMessageParts } from "./chat-output.ts";
import type { ChatRun } from "./chat-run.ts";
import { type Block, type BlockEvent, BlockStream, messageBlocks } from "./output-blocks.ts";

export interface SingleChoiceAnswer {
  output: CompletionOutput;
  blocks: Block[];
  sawToolCalls: boolean;
}

/** The whole answer; a client that leaves (signal) frees the engine's work. */
export async function wholeAnswer(run: ChatRun, signal: AbortSignal): Promise<SingleChoiceAnswer> {
  signal.addEventListener("abort", () => run.generation.abort());
  let output: CompletionOutput | null = null;
  for await (const choice of run.generation) {
    run.usage.add(choice);
    if (choice.delta.finished) output = choice.delta.output;
  }
  run.generation.checkComplete();
  const parts = chatMessageParts(output!.text, run.options);
  return { output: output!, blocks: messageBlocks(parts), sawToolCalls: parts.toolCalls.length > 0 };
}

/** The answer as block events; once they end, `answer` holds what wholeAnswer returns. */
export class StreamedAnswer implements AsyncIterable<BlockEvent> {
  answer: SingleChoiceAnswer | null = null;

  constructor(private readonly run: ChatRun) {}

  async *[Symbol.asyncIterator](): AsyncGenerator<BlockEvent> {
    const { run } = this;
    const chat = new ChatDeltaStream(run.options);
    const blocks = new BlockStream();
    for await (const choice of run.generation) {
      run.usage.add(choice);
      const { delta } = choice;
      yield* blocks.push(chat.push(delta.text));
      if (delta.finished) {
        yield* blocks.push(chat.finish());
        yield* blocks.finish();
        this.answer = { output: delta.output, blocks: blocks.blocks, sawToolCalls: chat.sawToolCalls };
      }
    }
    run.generation.checkComplete();
  }
}
