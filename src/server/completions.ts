// POST /v1/completions: OpenAI's legacy text completion, with prompts as text or token ids, one
// or many, and vLLM's sampling extras.
import { type ModelContext, routeModel, type ServerContext } from "./context.ts";
import { ApiError } from "./errors.ts";
import { type ChoiceDelta, checkSequenceCount, Generation } from "./generation.ts";
import { CompletionLogprobsWriter } from "./logprobs.ts";
import { decodeTokenIds, encodeText } from "./prompt-tokens.ts";
import { checkN, checkStreamOptions, samplingParams } from "./sampling.ts";
import { type CompletionRequest, completionRequestSchema, refuseUnsupportedFields } from "./schemas.ts";
import { sseResponse } from "./sse.ts";
import { structuredOutputs } from "./structured-outputs.ts";
import { newRequestId, Usage, unixSeconds } from "./usage.ts";

/** The request's prompts: one (text or token ids) or a list of them. */
function promptList(prompt: CompletionRequest["prompt"]): { prompts: (string | number[])[]; isSingle: boolean } {
  if (prompt.length === 0) throw new ApiError(400, "prompt must not be empty", "prompt");
  const isSingle = typeof prompt === "string" || typeof prompt[0] === "number";
  return { prompts: (isSingle ? [prompt] : prompt) as (string | number[])[], isSingle };
}

/** A prompt as token ids; text gets the tokenizer's special tokens (a BOS). */
async function promptTokenIds(context: ModelContext, entry: string | number[], field: string): Promise<number[]> {
  if (typeof entry === "string") return encodeText(context, entry, { addSpecialTokens: true, field });
  const { vocabSize } = context.engine.source.config;
  const outside = entry.find((id) => id >= vocabSize);
  if (outside !== undefined)
    throw new ApiError(400, `token id ${outside} is outside the vocabulary (size ${vocabSize})`, field);
  return entry;
}

export async function createCompletion(server: ServerContext, body: unknown, signal: AbortSignal): Promise<Response> {
  refuseUnsupportedFields(body, "completions");
  const request = completionRequestSchema.parse(body);
  const context = routeModel(server, request.model);
  checkStreamOptions(request);
  if (request.suffix)
    throw new ApiError(400, "suffix is not supported: this server does not do fill-in-the-middle", "suffix");
  if (request.echo && request.logprobs !== null && request.logprobs !== undefined) {
    throw new ApiError(
      400,
      "echo with logprobs would need the prompt's logprobs, which this server does not compute; drop one of them",
      "echo",
    );
  }
  const constraint = await structuredOutputs(context, request);
  const { prompts: entries, isSingle } = promptList(request.prompt);
  // Before any prompt is tokenized: a list of a million prompts is refused at once.
  checkN(context, request.n);
  checkSequenceCount(context, entries.length * (request.n ?? 1));
  const tokenized = await Promise.all(
    entries.map((entry, i) => promptTokenIds(context, entry, isSingle ? "prompt" : `prompt.${i}`)),
  );
  const prompts = tokenized.map((tokenIds, i) => ({
    asGiven: entries[i],
    tokenIds,
    params: samplingParams(context, request, {
      promptLength: tokenIds.length,
      promptField: "prompt",
      maxTokens: request.max_tokens,
      logprobs: request.logprobs ?? null,
      structuredOutputs: constraint,
    }),
  }));
  const { tokenizer } = context.engine;
  const echoTexts = request.echo
    ? await Promise.all(prompts.map((prompt) => decodeTokenIds(context, prompt.tokenIds)))
    : null;
  const id = newRequestId("cmpl");
  const head = { id, object: "text_completion", created: unixSeconds(), model: context.servedModelName };
  const usage = new Usage(prompts.reduce((sum, prompt) => sum + prompt.tokenIds.length, 0));
  const generation = Generation.start(context, id, prompts);
  const logprobWriters = new Map<number, CompletionLogprobsWriter>();
  const choiceLogprobs = ({ index, delta }: ChoiceDelta) => {
    if (!delta.logprobs) return null;
    if (!logprobWriters.has(index)) logprobWriters.set(index, new CompletionLogprobsWriter(tokenizer));
    return logprobWriters.get(index)!.write(delta.tokenIds, delta.logprobs);
  };

  if (request.stream) {
    const includeUsage = request.stream_options?.include_usage ?? false;
    const echoed = new Set<number>();
    async function* chunks() {
      for await (const choice of generation) {
        usage.add(choice);
        const { index, promptIndex, delta } = choice;
        let text = delta.text;
        if (echoTexts && !echoed.has(index)) {
          echoed.add(index);
          text = echoTexts[promptIndex] + text;
        }
        const logprobs = choiceLogprobs(choice);
        if (text === "" && !delta.finished && !logprobs) continue;
        const finishReason = delta.finished ? delta.output.finishReason : null;
        yield {
          ...head,
          choices: [
            {
              index,
              text,
              logprobs,
              finish_reason: finishReason,
              stop_reason: delta.finished ? delta.output.stopReason : null,
            },
          ],
          ...(includeUsage ? { usage: null } : {}),
        };
      }
      generation.checkComplete();
      if (includeUsage) yield { ...head, choices: [], usage };
    }
    return sseResponse(chunks(), () => generation.abort());
  }

  signal.addEventListener("abort", () => generation.abort());
  const choices: object[] = [];
  for await (const choice of generation) {
    usage.add(choice);
    // The output accumulates the whole sequence; its last delta has it all.
    const { index, promptIndex, delta } = choice;
    if (!delta.finished) continue;
    const { output } = delta;
    choices[index] = {
      index,
      text: (echoTexts?.[promptIndex] ?? "") + output.text,
      logprobs: output.logprobs && new CompletionLogprobsWriter(tokenizer).write(output.tokenIds, output.logprobs),
      finish_reason: output.finishReason,
      stop_reason: output.stopReason,
    };
  }
  generation.checkComplete();
  return Response.json({ ...head, choices, usage });
}
