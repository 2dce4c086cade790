// The step bookkeeping both schedulers share: schedule() and updateFromOutput() alternate, the
// scheduled requests advance by what they computed and take their sampled tokens, rejections and
// requests finished between steps are reported with the next step.
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

/**
 * The bookkeeping both schedulers share around a step: schedule() and updateFromOutput() must
 * alternate, requests rejected at admission and requests finished between steps are reported with
 * the next step.
 */
export class StepProtocol {
  /** Rejected at admission, reported by the next updateFromOutput. */
  readonly rejected: Request[] = [];
  /** Finished or aborted since the last schedule(): the runner drops their state. */
  readonly finishedRequestIds = new Set<string>();
  private pending: SchedulerOutput | null = null;

  /** At the start of schedule(). */
  beginSchedule(): void {
    if (this.pending !== null) {
      throw new Error("schedule() called again before updateFromOutput() of the previous step");
    }
  }

  /** The step's output, with the finished ids collected since the last one. */
  issue(parts: Omit<SchedulerOutput, "finishedRequestIds">): SchedulerOutput {
    const output: SchedulerOutput = { ...parts, finishedRequestIds: [...this.finishedRequestIds] };
    this.finishedRequestIds.clear();
    this.pending = output;
    return output;
  }

  /** At the start of updateFromOutput(): checks the alternation; returns the rejections owed. */
  accept(output: SchedulerOutput): EngineCoreOutput[] {
    if (output !== this.pending) {
      throw new Error("updateFromOutput() must be given the output of the last schedule()");
    }
    this.pending = null;
    return this.rejected.splice(0).map((request) => engineCoreOutput(request, []));
  }
}
