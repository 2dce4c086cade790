// The model runner: turns a scheduler output into one flattened forward batch (input ids,
// positions, slot mapping, block tables, sequence lengths, query offsets), runs the model, and
// samples the next token of every request whose prompt is complete. It keeps, per request, what
// the scheduler sends only once: token history, block table, sampling state.
import type { Backend } from "../backend/backend.ts";
import { RequestGenerator } from "../engine/random.ts";
import { type SampledToken, type SamplingRow, sample, type TokenLogprobs, tokenLogprobs } from "../engine/sampler.ts";
import type { SamplingParams } from "../engine/sampling-params.ts";
import type { SchedulerOutput } from "../engine/scheduler-output.ts";
import type { PendingBitmask } from "../engine/structured-output/token-bitmask.ts";
import type { EngineModel } from "../model/load-model.ts";
import { DecodeGraphs } from "./decode-graphs.ts";
import { type DeviceSamplingParams, type ForwardBatch, ModelForward } from "./forward.ts";
import type { KvCacheTensors } from "./kv-cache-tensors.ts";

interface RunnerRequestState {
  tokenIds: number[];
  numPromptTokens: number;
  blockIds: number[];
  params: SamplingParams;
  eosTokenIds: readonly number[];
  generator: RequestGenerator;
}

/** A request whose next token vt_sample can draw: temperature, top-k/p and min-p only (no
 * penalties, logit bias or min-tokens masking, which need the logits on the host). Its logprobs,
 * if asked for, are those of the raw logits: a log-softmax on the device of its row alone. */
function isDeviceSamplable(state: RunnerRequestState): boolean {
  const p = state.params;
  const outputs = state.tokenIds.length - state.numPromptTokens;
  return (
    p.repetitionPenalty === 1 &&
    p.presencePenalty === 0 &&
    p.frequencyPenalty === 0 &&
    p.logitBias.size === 0 &&
    outputs >= p.minTokens
  );
}

/** The largest f32 below 1: a draw of 1 - 2^-53 must not round up to 1 on the device. */
const MAX_UNIFORM = 1 - 2 ** -24;

/** vt_sample's parameters for these requests; random rows consume one draw each, as on the host. */
function deviceSamplingParams(states: RunnerRequestState[]): DeviceSamplingParams {
  const n = states.length;
  const params: DeviceSamplingParams = {
    temperatures: new Float32Array(n),
    topK: new Int32Array(n),
    topP: new Float32Array(n),
    minP: new Float32Array(n),
    uniforms: new Float32Array(n),
  };
  states.forEach((state, i) => {
    const p = state.params;
    params.topK[i] = p.topK;
    params.topP[i] = p.topP;
    params.minP[i] = p.minP;
    if (p.isGreedy) return;
    params.temperatures[i] = p.temperature;
    params.uniforms[i] = Math.min(state.generator.nextFloat(), MAX_UNIFORM);
  });
  return params;
}

/**
 * Asks for the allowed-token masks of the requests sampled this step (in row order); null if none
 * is constrained. The masks may still be filling while the forward pass runs.
 */
export type BitmaskProvider = (requestIds: readonly string[]) => PendingBitmask;

export interface ModelRunnerOptions {
  /** Never replay decode steps as graphs (vLLM's --enforce-eager). */
  enforceEager: boolean;
  maxNumSeqs: number;
  maxModelLen: number;
}

/** vLLM captures decode graphs up to 512 sequences; larger steps are compute-bound anyway. */
const MAX_GRAPH_BATCH = 512;

/** A step enqueued on the device (ModelRunner.launch). */
export interface LaunchedStep {
  /** Waits for the step; the sampled token of each request whose output asked for one. */
  collect(): Map<string, SampledToken>;
}

const NOTHING_LAUNCHED: LaunchedStep = { collect: () => new Map() };

export class ModelRunner {
  private readonly requests = new Map<string, RunnerRequestState>();
  /** A step launched and not collected yet, whose buffers the next launch would overwrite. */
  private uncollected = false;
  /** Kept across preemption (until the request finishes) so a seeded stream never restarts. */
  private readonly generators = new Map<string, RequestGenerator>();
  private readonly forward: ModelForward;
  readonly graphs: DecodeGraphs | null;
  readonly blockSize: number;

  constructor(
    backend: Backend,
    private readonly model: EngineModel,
    kvCache: KvCacheTensors,
    options: ModelRunnerOptions,
  ) {
    this.forward = new ModelForward(backend, model.config, model.weights, kvCache, model.actDtype);
    this.blockSize = kvCache.blockSize;
    this.graphs = !options.enforceEager
      ? new DecodeGraphs(backend, this.forward, {
          maxBatch: Math.min(options.maxNumSeqs, MAX_GRAPH_BATCH),
          blockSize: kvCache.blockSize,
          maxModelLen: options.maxModelLen,
        })
      : null;
  }

  free(): void {
    this.graphs?.free();
    this.forward.free();
  }

  /**
   * Runs one step in two halves: launch() enqueues it on the device and returns without waiting
   * (on a device that runs ops asynchronously); collect() waits and returns the sampled token of
   * each request whose output asked for one. Rows with a grammar sample only what their mask
   * allows. The host may schedule the next step and report the previous one in between (async
   * scheduling). The next launch must come after collect(): the step's buffers are reused.
   */
  async launch(output: SchedulerOutput, bitmaskOf: BitmaskProvider | null = null): Promise<LaunchedStep> {
    if (this.uncollected) throw new Error("model runner: a step was launched before the previous one was collected");
    for (const id of output.finishedRequestIds) {
      this.requests.delete(id);
      this.generators.delete(id);
    }
    for (const id of output.preemptedRequestIds) this.requests.delete(id);
    for (const r of output.scheduledNewRequests) {
      let generator = this.generators.get(r.requestId);
      if (!generator) {
        generator = new RequestGenerator(r.samplingParams.seed);
        this.generators.set(r.requestId, generator);
      }
      this.requests.set(r.requestId, {
        tokenIds: [...r.tokenIds],
        numPromptTokens: r.numPromptTokens,
        blockIds: [...r.blockIds],
        params: r.samplingParams,
        eosTokenIds: r.eosTokenIds,
        generator,
      });
    }
    const scheduled: { id: string; start: number; samples: boolean }[] = [];
    for (const r of output.scheduledNewRequests) {
      scheduled.push({ id: r.requestId, start: r.numComputedTokens, samples: r.samplesNextToken });
    }
    for (const r of output.scheduledCachedRequests) {
      const state = this.state(r.requestId);
      state.blockIds.push(...r.newBlockIds);
      r.newTokenIds.forEach((token, i) => {
        state.tokenIds[r.numComputedTokens + i] = token;
      });
      scheduled.push({ id: r.requestId, start: r.numComputedTokens, samples: r.samplesNextToken });
    }
    if (scheduled.length === 0 && output.paddingRows.length === 0) return NOTHING_LAUNCHED;

    const batch = this.buildBatch(output, scheduled);
    const sampling = scheduled.filter((s) => s.samples);
    const states = sampling.map((s) => this.state(s.id));
    // Asked for before the forward pass, awaited after it: the grammar thread fills the masks
    // while the model runs.
    const bitmask = sampling.length > 0 && bitmaskOf ? bitmaskOf(sampling.map((s) => s.id)) : null;
    if (sampling.length === 0) {
      // Only prefill chunks (or padding) this step: their K/V is all that is needed.
      this.forward.forward(batch);
      return NOTHING_LAUNCHED;
    }
    let collectTokens: () => SampledToken[];
    if (states.every(isDeviceSamplable)) {
      // vt_sample on either backend: one seed gives the same tokens on the CPU and on CUDA, and only
      // token ids (not a vocabulary of logits per row) come back to the host.
      const params = deviceSamplingParams(states);
      const pendingIds = this.graphs?.canRun(batch)
        ? await this.graphs.launch(batch, params, bitmask)
        : await this.forward.launchSample(batch, params, bitmask);
      collectTokens = () => {
        const ids = pendingIds();
        const logprobs = this.deviceLogprobs(states, ids);
        return states.map((_, i) => ({ tokenId: ids[i]!, logprobs: logprobs[i]! }));
      };
    } else {
      // Penalties and logit biases need the logits on the host: nothing overlaps such a step.
      const logits = await this.forward.logits(batch, bitmask);
      const rows: SamplingRow[] = states.map((state) => ({
        params: state.params,
        promptTokenIds: state.tokenIds.slice(0, state.numPromptTokens),
        outputTokenIds: state.tokenIds.slice(state.numPromptTokens),
        generator: state.generator,
        eosTokenIds: state.eosTokenIds,
      }));
      const tokens = sample(logits, this.model.config.vocabSize, rows);
      collectTokens = () => tokens;
    }
    this.uncollected = true;
    return {
      collect: () => {
        this.uncollected = false;
        const tokens = collectTokens();
        const sampled = new Map<string, SampledToken>();
        sampling.forEach((s, i) => {
          sampled.set(s.id, tokens[i]!);
          states[i]!.tokenIds.push(tokens[i]!.tokenId);
        });
        return sampled;
      },
    };
  }

  /** Each row's logprobs (null unless asked for), from log-softmax rows computed on the device. */
  private deviceLogprobs(states: RunnerRequestState[], tokens: Int32Array): (TokenLogprobs | null)[] {
    const result: (TokenLogprobs | null)[] = states.map(() => null);
    const rows = states.flatMap((state, i) => (state.params.logprobs === null ? [] : [i]));
    if (rows.length === 0) return result;
    const vocab = this.model.config.vocabSize;
    const logprobs = this.forward.logSoftmaxRows(rows);
    rows.forEach((row, j) => {
      const values = logprobs.subarray(j * vocab, (j + 1) * vocab);
      result[row] = tokenLogprobs(values, tokens[row]!, states[row]!.params.logprobs!);
    });
    return result;
  }

  private state(requestId: string): RunnerRequestState {
    const state = this.requests.get(requestId);
    if (!state) throw new Error(`model runner: no state for request ${requestId}`);
    return state;
  }

  /**
   * The requests' rows, then each padding row as a sequence of its own after them: token 0 at
   * its own positions, slot -1 so it writes no K/V, attending (through its request's block table)
   * only to its own causal window, never sampled. Its outputs are thrown away; what it read does
   * not matter, and no real sequence reads anything of it.
   */
  private buildBatch(
    output: SchedulerOutput,
    scheduled: { id: string; start: number; samples: boolean }[],
  ): ForwardBatch {
    const { paddingRows } = output;
    const numTokens = paddingRows.reduce((sum, pad) => sum + pad.numTokens, output.totalNumScheduledTokens);
    const numSeqs = scheduled.length + paddingRows.length;
    const tokenIds = new Int32Array(numTokens);
    const positions = new Int32Array(numTokens);
    const slotMapping = new Int32Array(numTokens);
    const queryStartLoc = new Int32Array(numSeqs + 1);
    const seqLens = new Int32Array(numSeqs);
    const tableOwners = [...scheduled.map((s) => s.id), ...paddingRows.map((pad) => pad.requestId)];
    const maxBlocksPerSeq = Math.max(...tableOwners.map((id) => this.state(id).blockIds.length));
    const blockTables = new Int32Array(numSeqs * maxBlocksPerSeq);
    const logitsIndices: number[] = [];
    const bs = this.blockSize;
    let row = 0;
    scheduled.forEach((s, i) => {
      const state = this.state(s.id);
      const n = output.numScheduledTokens.get(s.id)!;
      for (let j = 0; j < n; j++, row++) {
        const position = s.start + j;
        tokenIds[row] = state.tokenIds[position]!;
        positions[row] = position;
        slotMapping[row] = state.blockIds[Math.floor(position / bs)]! * bs + (position % bs);
      }
      queryStartLoc[i + 1] = row;
      seqLens[i] = s.start + n;
      blockTables.set(state.blockIds, i * maxBlocksPerSeq);
      if (s.samples) logitsIndices.push(row - 1);
    });
    paddingRows.forEach((pad, p) => {
      const i = scheduled.length + p;
      for (let j = 0; j < pad.numTokens; j++, row++) {
        positions[row] = pad.numComputedTokens + j;
        slotMapping[row] = -1;
      }
      queryStartLoc[i + 1] = row;
      seqLens[i] = pad.numComputedTokens + pad.numTokens;
      blockTables.set(this.state(pad.requestId).blockIds, i * maxBlocksPerSeq);
    });
    return {
      tokenIds,
      positions,
      slotMapping,
      queryStartLoc,
      seqLens,
      blockTables,
      maxBlocksPerSeq,
      logitsIndices: Int32Array.from(logitsIndices),
    };
  }
}
