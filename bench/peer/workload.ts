// What the side-by-side benchmark measures: the figures chosen, their sizes, and for each figure
// what either engine runs and counts, written into the report beside the numbers.

export const FIGURE_GROUPS = ["decode", "end-to-end", "batched-decode", "prefill", "throughput"] as const;
export type FigureGroup = (typeof FIGURE_GROUPS)[number];

export interface PeerWorkload {
  groups: Set<FigureGroup>;
  /** Threads of each engine (OpenMP threads for vllm-ts, -t for llama.cpp). */
  threads: number;
  /** Sequences decoding together in the batched-decode figures. */
  batchSizes: number[];
  /** The prefill figure's prompt. */
  prefillTokens: number;
  /** The offline throughput figure: requests of `requestInputTokens` in, `requestOutputTokens` out. */
  requests: number;
  requestInputTokens: number;
  requestOutputTokens: number;
}

/** llama-batched-bench's decode figures: each sequence's prompt, then the tokens generated. */
export const DECODE_PROMPT_TOKENS = 128;
export const DECODE_GENERATED_TOKENS = 32;
/** vllm-ts decodes at a fixed context: the middle of llama.cpp's, which grows from 128 to 160. */
export const DECODE_CONTEXT = DECODE_PROMPT_TOKENS + DECODE_GENERATED_TOKENS / 2;
/** llama-bench's tg32 and vllm-ts's single-request latency. */
export const END_TO_END_TOKENS = 32;
/** Timed runs inside one command (llama-bench -r, bench latency --num-iters), averaged by the tool. */
export const TOOL_REPETITIONS = 3;

export interface FigureDescription {
  name: string;
  unit: "tokens/s";
  vllmTs: string;
  llamaCpp: string;
}

/** The batch sizes whose decode speed is measured: 1 for the single-stream figure, then the others. */
export function decodeBatchSizes(workload: PeerWorkload): number[] {
  const sizes = [
    ...(workload.groups.has("decode") ? [1] : []),
    ...(workload.groups.has("batched-decode") ? workload.batchSizes : []),
  ];
  return [...new Set(sizes)].sort((a, b) => a - b);
}

export const decodeFigure = (batchSize: number) => `decode_batch_${batchSize}`;
export const END_TO_END_FIGURE = "end_to_end_batch_1";
export const prefillFigure = (tokens: number) => `prefill_${tokens}_tokens`;
export const THROUGHPUT_FIGURE = "offline_throughput";

export function figureDescriptions(workload: PeerWorkload): FigureDescription[] {
  const { groups, prefillTokens: prompt, requests, requestInputTokens: input, requestOutputTokens: output } = workload;
  const figures: FigureDescription[] = decodeBatchSizes(workload).map((batch) => ({
    name: decodeFigure(batch),
    unit: "tokens/s",
    vllmTs: `bench/forward.ts: ${batch} sequence(s) at context ${DECODE_CONTEXT}, one new token each per forward pass (greedy sampling on the device included); ${batch} / mean step time over ${DECODE_GENERATED_TOKENS} steps after a warm-up`,
    llamaCpp: `llama-batched-bench -npp ${DECODE_PROMPT_TOKENS} -ntg ${DECODE_GENERATED_TOKENS} -npl ${batch}: S_TG, ${batch} x ${DECODE_GENERATED_TOKENS} generated tokens / time of the ${DECODE_GENERATED_TOKENS} decode steps (context ${DECODE_PROMPT_TOKENS} to ${DECODE_PROMPT_TOKENS + DECODE_GENERATED_TOKENS}, no sampling)`,
  }));
  if (groups.has("end-to-end")) {
    figures.push({
      name: END_TO_END_FIGURE,
      unit: "tokens/s",
      vllmTs: `vllm-ts bench latency --batch-size 1 --input-len 1 --output-len ${END_TO_END_TOKENS}: output tokens / mean end-to-end seconds of one request through the engine (scheduler, ${END_TO_END_TOKENS} forward passes of one token, sampling), ${TOOL_REPETITIONS} iterations after a warm-up`,
      llamaCpp: `llama-bench -p 0 -n ${END_TO_END_TOKENS} (tg${END_TO_END_TOKENS}): ${END_TO_END_TOKENS} / mean seconds of ${END_TO_END_TOKENS} one-token llama_decode calls from an empty context (no sampling), ${TOOL_REPETITIONS} repetitions after a warm-up`,
    });
  }
  if (groups.has("prefill")) {
    figures.push({
      name: prefillFigure(prompt),
      unit: "tokens/s",
      vllmTs: `bench/forward.ts: one ${prompt}-token prompt in one forward pass (the last token sampled); ${prompt} / mean seconds of 2 runs after a warm-up`,
      llamaCpp: `llama-bench -p ${prompt} -n 0 (pp${prompt}): ${prompt} / mean seconds of the prompt's llama_decode (batch 2048, micro-batch 512), ${TOOL_REPETITIONS} repetitions after a warm-up`,
    });
  }
  if (groups.has("throughput")) {
    figures.push({
      name: THROUGHPUT_FIGURE,
      unit: "tokens/s",
      vllmTs: `vllm-ts bench throughput, ${requests} random requests of ${input} prompt tokens and ${output} output tokens (EOS ignored) submitted at once, continuous batching (--max-num-seqs ${requests}, steps of at most 2048 tokens, prompts chunked among decodes): (prompt + output tokens) / elapsed seconds`,
      llamaCpp: `llama-batched-bench -npp ${input} -ntg ${output} -npl ${requests}: S t/s, (${requests} x ${input} prompt + ${requests} x ${output} generated tokens) / (prefill + decode seconds): every prompt first (batches of 2048), then ${output} steps of ${requests} tokens`,
    });
  }
  return figures;
}
