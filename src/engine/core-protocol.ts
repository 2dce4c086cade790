// Messages between the async engine (main thread) and the engine core's Worker. Only token ids,
// plain sampling parameters and small records cross; text stays on the main thread.
import type { LogSettings } from "../logger.ts";
import type { KvCacheSize, StepOutput } from "./engine-core.ts";
import type { EngineConfig, ModelOptions } from "./options.ts";
import type { SamplingParamsInit } from "./sampling-params.ts";
import type { SchedulerStats } from "./scheduler-output.ts";

/** What an engine core is started with: the model, where and how it loads (options.ts), the engine's config. */
export interface CoreOptions extends Partial<ModelOptions>, Partial<EngineConfig> {
  /** A local model folder or a Hub repo id; absent: the embedded demo model. */
  model?: string;
}

export interface WireRequest {
  requestId: string;
  promptTokenIds: number[];
  params: SamplingParamsInit;
  eosTokenIds: readonly number[];
}

export type ToCore =
  /** log: the main thread's logger settings, for the core's own lines; null keeps consola's defaults. */
  | { type: "init"; options: CoreOptions; log: LogSettings | null }
  | { type: "add"; request: WireRequest }
  | { type: "abort"; requestIds: string[] }
  | { type: "stats"; id: number }
  | { type: "shutdown" };

export interface CoreInfo {
  device: string;
  deviceName: string;
  /** The CPU library's variant the core runs (Backend.cpuKernels), or null. */
  cpuKernels: string | null;
  /** Why the preferred device was not used (see Backend.fallbackReason), or null. */
  deviceFallback: string | null;
  kvCacheSize: KvCacheSize;
  config: Required<EngineConfig>;
  weightBytes: number;
}

/** A step of the core's start-up as it finishes, timed on the core's thread. */
export type LoadStep =
  /** The backend opened and the weights on its device. */
  | { step: "weights"; bytes: number; seconds: number }
  /** The KV cache allocated (with the model runner beside it). */
  | { step: "kvCache"; size: KvCacheSize; seconds: number };

export type FromCore =
  | { type: "loaded"; step: LoadStep }
  | { type: "ready"; info: CoreInfo }
  /** numScheduledTokens: the tokens the step computed (vLLM's iteration tokens). */
  | { type: "outputs"; outputs: StepOutput[]; stats: SchedulerStats; numScheduledTokens: number }
  | { type: "stats"; id: number; stats: SchedulerStats }
  | { type: "failed"; message: string }
  | { type: "closed" };
