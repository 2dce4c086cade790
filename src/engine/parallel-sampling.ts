// Parallel sampling (n > 1) as vLLM does it: one engine request per sample. The prefix cache
// shares the prompt's blocks between them, and each gets its own seed (seed + index) so the
// samples differ but stay reproducible.
import { SamplingParams } from "./sampling-params.ts";

export interface ChildRequest {
  requestId: string;
  index: number;
  params: SamplingParams;
}

export function childRequests(requestId: string, params: SamplingParams): ChildRequest[] {
  if (params.n === 1) return [{ requestId, index: 0, params }];
  return Array.from({ length: params.n }, (_, index) => ({
    requestId: `${requestId}-${index}`,
    index,
    params: new SamplingParams({ ...params.toInit(), n: 1, seed: params.seed === null ? null : params.seed + index }),
  }));
}
