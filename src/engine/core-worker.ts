// The engine core's thread: loads the weights, then steps while there is work and sleeps on
// its message port when there is none, so the HTTP thread never waits for a forward pass.

import { configureLogger } from "../logger.ts";
import type { CoreOptions, FromCore, ToCore } from "./core-protocol.ts";
import { EngineCore } from "./engine-core.ts";
import { type ModelOnDevice, openModelOnDevice } from "./model-on-device.ts";
import { Request } from "./request.ts";
import { SamplingParams } from "./sampling-params.ts";

declare const self: Worker;

const inbox: ToCore[] = [];
let wake: (() => void) | null = null;
self.onmessage = (event: MessageEvent<ToCore>) => {
  inbox.push(event.data);
  wake?.();
};
const post = (message: FromCore) => self.postMessage(message);

function nextMessage(): Promise<void> {
  return inbox.length > 0 ? Promise.resolve() : new Promise((resolve) => (wake = resolve));
}

/** Lets queued messages (new requests, aborts) arrive between steps. */
function yieldToMessages(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

const secondsSince = (start: number) => (performance.now() - start) / 1000;

async function start(options: CoreOptions): Promise<{ onDevice: ModelOnDevice; core: EngineCore }> {
  const loadStarted = performance.now();
  const onDevice = await openModelOnDevice(options);
  const { backend, model } = onDevice;
  post({
    type: "loaded",
    step: { step: "weights", bytes: model.weights.totalBytes, seconds: secondsSince(loadStarted) },
  });
  const allocateStarted = performance.now();
  // Grammars need the vocabulary: their thread loads the tokenizer when a request first asks for one.
  const core = EngineCore.create(backend, model, options, {
    dir: model.dir,
    ggufFile: model.ggufFile,
    tokenizer: options.tokenizer,
  });
  post({ type: "loaded", step: { step: "kvCache", size: core.kvCacheSize, seconds: secondsSince(allocateStarted) } });
  post({
    type: "ready",
    info: {
      device: backend.name,
      deviceName: backend.deviceName,
      cpuKernels: backend.cpuKernels,
      deviceFallback: backend.fallbackReason,
      kvCacheSize: core.kvCacheSize,
      config: core.config,
      weightBytes: model.weights.totalBytes,
    },
  });
  return { onDevice, core };
}

async function run(): Promise<void> {
  await nextMessage();
  const init = inbox.shift()!;
  if (init.type !== "init") throw new Error(`engine core: expected init, got ${init.type}`);
  if (init.log) configureLogger(init.log);
  const { onDevice, core } = await start(init.options);
  for (;;) {
    while (inbox.length > 0) {
      const message = inbox.shift()!;
      switch (message.type) {
        case "add": {
          const { requestId, promptTokenIds, params, eosTokenIds } = message.request;
          core.addRequest(
            new Request({ requestId, promptTokenIds, samplingParams: new SamplingParams(params), eosTokenIds }),
          );
          break;
        }
        case "abort":
          core.abort(message.requestIds);
          break;
        case "stats":
          post({ type: "stats", id: message.id, stats: core.stats() });
          break;
        case "shutdown":
          core.close();
          onDevice.close();
          post({ type: "closed" });
          return;
        case "init":
          break;
      }
    }
    if (core.hasUnfinishedRequests()) {
      const outputs = await core.step();
      const numScheduledTokens = core.lastStep?.numScheduledTokens ?? 0;
      post({ type: "outputs", outputs, stats: core.stats(), numScheduledTokens });
      await yieldToMessages();
    } else {
      await nextMessage();
    }
  }
}

run().catch((error: unknown) =>
  post({ type: "failed", message: error instanceof Error ? error.message : String(error) }),
);
