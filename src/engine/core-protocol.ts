// Messages between the async engine (main thread) and the engine core's Worker. Only token ids,
// plain sampling parameters and small records cross; text stays on the main thread.
import type { BackendOptions } from "../backend/backend.ts";
import type { LoadModelOptions } from "../model/load-model.ts";
import type { EngineConfig, KvCacheSize, StepOutput } from "./engine-core.ts";
import type { SamplingParamsInit } from "./sampling-params.ts";
import type { SchedulerStats } from "./scheduler-interface.ts";

export interface CoreOptions extends LoadModelOptions, Partial<EngineConfig> {
  model?: string;
  /** "auto" (the model's generation_config.json), "vllm" (ignore it) or a folder holding one. */
  generationConfig?: string;
  /** A folder with tokenizer.json (or "vllm-ts-demo") instead of the model's own tokenizer. */
  tokenizer?: string;
  device?: BackendOptions["device"];
  numThreads?: number;
}

export interface WireRequest {
  requestId: string;
  promptTokenIds: number[];
  params: SamplingParamsInit;
  eosTokenIds: readonly number[];
}

export type ToCore =
  | { type: "init"; options: CoreOptions }
  | { type: "add"; request: WireRequest }
  | { type: "abort"; requestIds: string[] }
  | { type: "stats"; id: number }
  | { type: "shutdown" };

export interface CoreInfo {
  device: string;
  deviceName: string;
  /** Why the preferred device was not used (see Backend.fallbackReason), or null. */
  deviceFallback: string | null;
  kvCacheSize: KvCacheSize;
  config: Required<EngineConfig>;
  weightBytes: number;
}

export type FromCore =
  | { type: "ready"; info: CoreInfo }
  | { type: "outputs"; outputs: StepOutput[]; stats: SchedulerStats }
  | { type: "stats"; id: number; stats: SchedulerStats }
  | { type: "failed"; message: string }
  | { type: "closed" };
