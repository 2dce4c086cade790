// Starts the engine of every served model, one after another. Each engine's KV budget is what
// its gpuMemoryUtilization leaves of the device after the memory already in use, which includes
// the engines started before it; so each model's utilization is its share of the device, and the
// k-th engine may fill the device up to the sum of the first k shares.
import { AsyncEngine } from "../engine/async-engine.ts";
import type { CoreOptions, LoadStep } from "../engine/core-protocol.ts";
import type { ServedModel } from "./context.ts";
import { Metrics } from "./metrics.ts";
import { TokenizerThread } from "./tokenizer-thread.ts";

export interface ModelSpec {
  /** The engine's options; gpuMemoryUtilization is this model's share of the device. */
  options: CoreOptions & { gpuMemoryUtilization: number };
  /** The name clients use in `model`; the model directory's name when absent. */
  servedModelName?: string;
  chatTemplate: string | null;
}

/** The per-engine limits that give each model its share: running sums of the shares. */
export function memoryCeilings(shares: readonly number[]): number[] {
  let sum = 0;
  const ceilings = shares.map((share) => (sum += share));
  // A little slack for shares such as 0.3 + 0.7 that sum past 1 in floating point only.
  if (sum > 1 + 1e-9)
    throw new Error(`the models' GPU memory shares add up to ${sum.toFixed(3)}, more than the whole device`);
  return ceilings.map((ceiling) => Math.min(ceiling, 1));
}

/** What the server hears while its models start (and logs). */
export interface StartupListener {
  /** One loading step of the model served as `modelName`, as it finishes. */
  loaded(modelName: string, step: LoadStep): void;
  started(model: ServedModel, startSeconds: number): void;
}

/** Starts every model in order; a failure shuts down those already started. */
export async function startServedModels(
  specs: readonly ModelSpec[],
  listener: StartupListener,
): Promise<ServedModel[]> {
  const ceilings = memoryCeilings(specs.map((spec) => spec.options.gpuMemoryUtilization));
  const models: ServedModel[] = [];
  try {
    for (const [i, spec] of specs.entries()) {
      const started = performance.now();
      const engine = await AsyncEngine.start({ ...spec.options, gpuMemoryUtilization: ceilings[i]! }, (step, source) =>
        listener.loaded(spec.servedModelName ?? source.name, step),
      );
      const servedModelName = spec.servedModelName ?? engine.source.name;
      const metrics = new Metrics(servedModelName, engine.info);
      engine.onStep = (numScheduledTokens) => metrics.recordIteration(numScheduledTokens);
      models.push({
        servedModelName,
        engine,
        metrics,
        chatTemplate: spec.chatTemplate,
        tokenizerThread: new TokenizerThread(engine.source, spec.options.tokenizer),
      });
      if (models.some((model, j) => j < i && model.servedModelName === servedModelName)) {
        throw new Error(`two models are served as "${servedModelName}": give each its own served model name`);
      }
      listener.started(models[i]!, (performance.now() - started) / 1000);
    }
    return models;
  } catch (error) {
    await shutdownServedModels(models);
    throw error;
  }
}

export async function shutdownServedModels(models: readonly ServedModel[]): Promise<void> {
  for (const model of models) model.tokenizerThread?.close();
  await Promise.all(models.map((model) => model.engine.shutdown()));
}
