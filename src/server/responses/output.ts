// The Responses API's output: each block of the answer as an output item (reasoning, message,
// function_call), and the response object around them, in the shapes OpenAI's clients read.
import type { ChatRun } from "../chat-run.ts";
import type { Block } from "../output-blocks.ts";
import type { ResponsesRequest } from "./request.ts";

export type ResponseStatus = "in_progress" | "completed" | "incomplete";

/** What every snapshot of one response repeats: its id, time, and the settings it ran with. */
export interface ResponseHeader {
  run: ChatRun;
  request: ResponsesRequest;
  createdAt: number;
}

const ITEM_PREFIX = { reasoning: "rs", text: "msg", tool_call: "fc" } as const;

/** An output item's id, unique within its response and across responses. */
export function itemId(header: ResponseHeader, block: Block, index: number): string {
  return `${ITEM_PREFIX[block.kind]}_${header.run.id.slice("resp_".length)}_${index}`;
}

/** A text or reasoning block's one content part. */
export function contentPart(block: Block): object {
  return block.kind === "reasoning"
    ? { type: "reasoning_text", text: block.text }
    : { type: "output_text", text: block.text, annotations: [], logprobs: [] };
}

/**
 * The item of a block: as it opens (`opening`: no content parts, no arguments yet, which the events
 * then add) or as it ends.
 */
export function outputItem(block: Block, id: string, opening = false): object {
  const status = opening ? "in_progress" : "completed";
  switch (block.kind) {
    case "reasoning":
      return { type: "reasoning", id, summary: [], content: opening ? [] : [contentPart(block)], status };
    case "text":
      return { type: "message", id, status, role: "assistant", content: opening ? [] : [contentPart(block)] };
    case "tool_call":
      return {
        type: "function_call",
        id,
        call_id: block.id,
        name: block.name,
        arguments: opening ? "" : block.text,
        status,
      };
  }
}

/** The response object; usage once the generation has ended. */
export function responseObject(header: ResponseHeader, status: ResponseStatus, output: object[]): object {
  const { run, request } = header;
  const ended = status !== "in_progress";
  const { usage } = run;
  return {
    id: run.id,
    object: "response",
    created_at: header.createdAt,
    status,
    background: false,
    error: null,
    incomplete_details: status === "incomplete" ? { reason: "max_output_tokens" } : null,
    instructions: request.instructions ?? null,
    max_output_tokens: run.params.maxTokens,
    model: run.context.servedModelName,
    output,
    parallel_tool_calls: request.parallel_tool_calls ?? true,
    previous_response_id: null,
    reasoning: null,
    // Nothing is kept: a later request cannot refer to this response.
    store: false,
    temperature: run.params.temperature,
    text: { format: request.text?.format ?? { type: "text" } },
    tool_choice: request.tool_choice ?? (request.tools?.length ? "auto" : "none"),
    tools: request.tools ?? [],
    top_p: run.params.topP,
    truncation: "disabled",
    usage: ended
      ? {
          input_tokens: usage.promptTokens,
          output_tokens: usage.completionTokens,
          total_tokens: usage.promptTokens + usage.completionTokens,
        }
      : null,
    user: request.user ?? null,
    metadata: request.metadata ?? {},
  };
}
