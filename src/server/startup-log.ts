// serve's start-up lines, as vLLM's: each model's loading steps as they finish, with their times
// (weights, KV cache), then one line on the model and the device it runs on, then the line that
// says the server is ready and where. Each carries its figures as fields for --log-format json.
import { describeDevice } from "../backend/device-description.ts";
import type { LoadStep } from "../engine/core-protocol.ts";
import { logger, withFields } from "../logger.ts";
import type { ServedModel } from "./context.ts";

const mib = (size: number) => `${(size / 2 ** 20).toFixed(1)} MiB`;
const seconds = (value: number) => `${value.toFixed(2)} s`;
/** Seconds in a field, to the millisecond: the clock's noise past it tells nothing. */
const roundedSeconds = (value: number) => Math.round(value * 1000) / 1000;

export function logLoadStep(modelName: string, loaded: LoadStep): void {
  if (loaded.step === "weights") {
    logger.info(
      withFields(`${modelName}: weights: ${mib(loaded.bytes)} loaded in ${seconds(loaded.seconds)}`, {
        model: modelName,
        step: "weights",
        bytes: loaded.bytes,
        seconds: roundedSeconds(loaded.seconds),
      }),
    );
    return;
  }
  const { size } = loaded;
  logger.info(
    withFields(
      `${modelName}: KV cache: ${size.numBlocks} blocks of ${size.blockSize} tokens (${size.maxTokens} tokens, ${mib(size.bytes)}) allocated in ${seconds(loaded.seconds)}`,
      {
        model: modelName,
        step: "kv_cache",
        num_blocks: size.numBlocks,
        block_size: size.blockSize,
        max_tokens: size.maxTokens,
        bytes: size.bytes,
        seconds: roundedSeconds(loaded.seconds),
      },
    ),
  );
}

export function logModelStarted({ servedModelName, engine }: ServedModel, startSeconds: number): void {
  const { info, source } = engine;
  logger.info(
    withFields(
      `${servedModelName}: ${source.ggufFile ?? source.dir ?? source.name} (${source.config.architecture}) loaded on ${describeDevice(info.device, info.deviceName, info.cpuKernels)} ` +
        `in ${seconds(startSeconds)}; max model len ${info.config.maxModelLen}` +
        (info.deviceFallback ? `; not used: ${info.deviceFallback}` : ""),
      {
        model: servedModelName,
        source: source.ggufFile ?? source.dir ?? source.name,
        architecture: source.config.architecture,
        device: info.device,
        device_name: info.deviceName,
        cpu_kernels: info.cpuKernels,
        max_model_len: info.config.maxModelLen,
        seconds: roundedSeconds(startSeconds),
      },
    ),
  );
}

/** The line users wait for; `sinceStart` counts from the process's start. */
export function logReady(names: readonly string[], url: string, apiKeyRequired: boolean, sinceStart: number): void {
  logger.success(
    withFields(
      `serving ${names.join(", ")} at ${url}${apiKeyRequired ? " (API key required)" : ""}, ready ${seconds(sinceStart)} after start`,
      { models: names, url, seconds: roundedSeconds(sinceStart) },
    ),
  );
}
