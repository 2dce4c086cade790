// A backend with a model's weights on it: what every engine core runs on (the server's worker,
// the offline LLM, the benchmarks), opened and loaded the same way everywhere.
import { Backend } from "../backend/backend.ts";
import { type EngineModel, loadModelWeights, resolveModel } from "../model/load-model.ts";
import type { CoreOptions } from "./core-protocol.ts";

export interface ModelOnDevice {
  backend: Backend;
  model: EngineModel;
  /** Frees the weights and closes the backend. */
  close(): void;
}

export async function openModelOnDevice(options: CoreOptions & { libraryPath?: string }): Promise<ModelOnDevice> {
  const backend = await Backend.open({
    device: options.device,
    numThreads: options.numThreads,
    libraryPath: options.libraryPath,
  });
  try {
    if (options.batchInvariant) backend.setBatchInvariant(true);
    const model = loadModelWeights(backend, await resolveModel(options.model, options), options);
    return {
      backend,
      model,
      close() {
        model.weights.free();
        backend.close();
      },
    };
  } catch (error) {
    backend.close();
    throw error;
  }
}
