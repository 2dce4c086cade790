// The step bookkeeping both schedulers share: schedule() and updateFromOutput() take turns (with
// async scheduling, one step ahead), the scheduled requests advance by what they computed and take
// their sampled tokens, rejections and requests finished between steps are reported with the next
// step.
import type { Request } from "./request.ts";
import { type EngineCoreOutput, engineCoreOutput, type SchedulerOutput } from "./scheduler-output.ts";

/**
 * The part of updateFromOutput both schedulers share: every scheduled request still live
 * advances by the tokens it computed; one whose prompt (or resumed history) is now complete takes
 * its sampled token and may finish. What a finished request does next is the policy's:
 * `onFinished` (leave at once, or keep a static batch's reservation).
 */
export function applyStepResults(
  output: SchedulerOutput,
  sampledTokenIds: ReadonlyMap<string, readonly number[]>,
  liveRequest: (requestId: string) => Request | undefined,
  maxModelLen: number,
  onFinished: (request: Request) => void,
): EngineCoreOutput[] {
  const outputs: EngineCoreOutput[] = [];
  for (const [requestId, numTokens] of output.numScheduledTokens) {
    // Undefined when aborted since the step was scheduled: its blocks are already handled.
    const request = liveRequest(requestId);
    if (request === undefined) continue;
    request.numComputedTokens += numTokens;
    // A partial prefill: the logits of its last position predict a token already known.
    if (request.numComputedTokens < request.numTokens) continue;
    const newTokenIds = request.appendSampledTokens(sampledTokenIds.get(requestId) ?? [], maxModelLen);
    if (request.isFinished) onFinished(request);
    outputs.push(engineCoreOutput(request, newTokenIds));
  }
  return outputs;
}

/** What the steps scheduled but not yet updated compute for one request. */
export interface InFlight {
  numTokens: number;
  /** One of those steps samples the request's next token, whose id is not known yet. */
  samples: boolean;
}

export const NOTHING_IN_FLIGHT: InFlight = { numTokens: 0, samples: false };

/**
 * The bookkeeping both schedulers share around a step: schedule() and updateFromOutput() take
 * turns (with async scheduling the next schedule() may come once before the previous step's
 * update), requests rejected at admission and requests finished between steps are reported with
 * the next step.
 */
export class StepProtocol {
  /** Rejected at admission, reported by the next updateFromOutput. */
  readonly rejected: Request[] = [];
  /** Finished or aborted since the last schedule(): the runner drops their state. */
  readonly finishedRequestIds = new Set<string>();
  /**
   * Outputs scheduled and not yet updated, oldest first, each with the requests it samples (found
   * when first asked: only async scheduling asks).
   */
  private readonly pending: { output: SchedulerOutput; sampling: Set<string> | null }[] = [];

  /** maxInFlight: 1, or 2 with async scheduling (step N+1 scheduled while step N runs). */
  constructor(private readonly maxInFlight = 1) {}

  /** At the start of schedule(). */
  beginSchedule(): void {
    if (this.pending.length >= this.maxInFlight) {
      throw new Error(
        this.maxInFlight === 1
          ? "schedule() called again before updateFromOutput() of the previous step"
          : `schedule() called with ${this.pending.length} steps not yet updated`,
      );
    }
  }

  /** The step's output, with the finished ids collected since the last one. */
  issue(parts: Omit<SchedulerOutput, "finishedRequestIds">): SchedulerOutput {
    const output: SchedulerOutput = { ...parts, finishedRequestIds: [...this.finishedRequestIds] };
    this.finishedRequestIds.clear();
    this.pending.push({ output, sampling: null });
    return output;
  }

  /** At the start of updateFromOutput(): checks the order; returns the rejections owed. */
  accept(output: SchedulerOutput): EngineCoreOutput[] {
    if (output !== this.pending[0]?.output) {
      throw new Error("updateFromOutput() must be given the output of the oldest schedule() not yet updated");
    }
    this.pending.shift();
    return this.rejected.splice(0).map((request) => engineCoreOutput(request, []));
  }

  /** What the steps scheduled and not yet updated compute for the request (nothing when in step). */
  inFlight(requestId: string): InFlight {
    let inFlight = NOTHING_IN_FLIGHT;
    for (const entry of this.pending) {
      const numTokens = entry.output.numScheduledTokens.get(requestId);
      if (numTokens === undefined) continue;
      entry.sampling ??= samplingRequestIds(entry.output);
      inFlight = {
        numTokens: inFlight.numTokens + numTokens,
        samples: inFlight.samples || entry.sampling.has(requestId),
      };
    }
    return inFlight;
  }
}

/** The requests whose next token the output's step samples. */
function samplingRequestIds(output: SchedulerOutput): Set<string> {
  const ids = new Set<string>();
  for (const r of output.scheduledNewRequests) if (r.samplesNextToken) ids.add(r.requestId);
  for (const r of output.scheduledCachedRequests) if (r.samplesNextToken) ids.add(r.requestId);
  return ids;
}
