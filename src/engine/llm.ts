// The offline batch API, as vLLM's LLM class:
//   const llm = new LLM({ model });
//   const outputs = await llm.generate(prompts, new SamplingParams({ temperature: 0 }));
// All prompts go into one engine at once and continuous batching runs them; results come back in
// prompt order. A progress bar shows on a terminal.
import { type LoadedModel, withGenerationConfig } from "../model/load-model.ts";
import { loadModelTokenizer } from "../model/load-tokenizer.ts";
import type { CoreOptions } from "./core-protocol.ts";
import { EngineCore } from "./engine-core.ts";
import { type ModelOnDevice, openModelOnDevice } from "./model-on-device.ts";
import { type CompletionOutput, OutputProcessor } from "./output-processor.ts";
import { childRequests } from "./parallel-sampling.ts";
import { Request } from "./request.ts";
import { SamplingParams, withDefaults } from "./sampling-params.ts";

/** The engine's options (src/engine/options.ts), flat as in vLLM's LLM(model=..., max_num_seqs=...). */
export interface LLMOptions extends CoreOptions {
  /** A native library file to load instead of the embedded ones (see BackendOptions). */
  libraryPath?: string;
}

export type PromptInput = string | { promptTokenIds: readonly number[] };

export interface RequestOutput {
  requestId: string;
  prompt: string | null;
  promptTokenIds: number[];
  /** n completions, by index. */
  outputs: CompletionOutput[];
  finished: boolean;
  /** Set when the engine refused the request (e.g. a prompt longer than max model length). */
  error: string | null;
}

interface Engine {
  onDevice: ModelOnDevice;
  model: LoadedModel;
  core: EngineCore;
}

export class LLM {
  private readonly engine: Promise<Engine>;
  private nextRequestId = 0;

  constructor(options: LLMOptions = {}) {
    this.engine = (async () => {
      const onDevice = await openModelOnDevice(options);
      try {
        const tokenizer = await loadModelTokenizer(onDevice.model, options.tokenizer);
        const model = {
          ...onDevice.model,
          ...(await withGenerationConfig(onDevice.model, options.generationConfig)),
          tokenizer,
        };
        const grammarVocab = {
          dir: onDevice.model.dir,
          ggufFile: onDevice.model.ggufFile,
          tokenizer: options.tokenizer,
        };
        return { onDevice, model, core: EngineCore.create(onDevice.backend, model, options, grammarVocab) };
      } catch (error) {
        onDevice.close();
        throw error;
      }
    })();
  }

  /** The loaded model (config, tokenizer), once ready. */
  async model(): Promise<LoadedModel> {
    return (await this.engine).model;
  }

  async generate(
    prompts: PromptInput | PromptInput[],
    params: SamplingParams | SamplingParams[] = new SamplingParams(),
    options: { progress?: boolean } = {},
  ): Promise<RequestOutput[]> {
    const { model, core } = await this.engine;
    const list = Array.isArray(prompts) ? prompts : [prompts];
    const paramsList = Array.isArray(params) ? params : list.map(() => params);
    if (paramsList.length !== list.length)
      throw new RangeError(`got ${paramsList.length} sampling params for ${list.length} prompts`);
    const processor = new OutputProcessor(model.tokenizer);
    const results: RequestOutput[] = [];
    const owner = new Map<string, { result: RequestOutput; index: number }>();
    let remaining = 0;

    list.forEach((prompt, i) => {
      const sampling = withDefaults(paramsList[i]!, model.generationConfig);
      sampling.validateForVocab(model.config.vocabSize);
      const promptTokenIds = typeof prompt === "string" ? model.tokenizer.encode(prompt) : [...prompt.promptTokenIds];
      const requestId = String(this.nextRequestId++);
      const result: RequestOutput = {
        requestId,
        prompt: typeof prompt === "string" ? prompt : null,
        promptTokenIds,
        outputs: [],
        finished: false,
        error: null,
      };
      results.push(result);
      for (const child of childRequests(requestId, sampling)) {
        processor.add(child.requestId, child.index, promptTokenIds, child.params);
        owner.set(child.requestId, { result, index: child.index });
        core.addRequest(
          new Request({
            requestId: child.requestId,
            promptTokenIds,
            samplingParams: child.params,
            eosTokenIds: model.generationConfig.eosTokenIds ?? model.config.eosTokenIds,
          }),
        );
        remaining++;
      }
    });

    const progress = options.progress ?? process.stderr.isTTY === true;
    const started = performance.now();
    let done = 0;
    while (core.hasUnfinishedRequests()) {
      const stopped: string[] = [];
      for (const step of await core.step()) {
        const delta = processor.process(step);
        const entry = owner.get(step.requestId);
        if (!delta || !entry) continue;
        entry.result.outputs[entry.index] = delta.output;
        if (delta.error) entry.result.error = delta.error;
        if (delta.stoppedByString) stopped.push(step.requestId);
        if (delta.finished) {
          done++;
          remaining--;
        }
      }
      if (stopped.length > 0) core.abort(stopped);
      if (progress) drawProgress(done, done + remaining, started);
    }
    if (progress) process.stderr.write("\n");
    for (const result of results) result.finished = result.outputs.every((o) => o?.finishReason !== null);
    return results;
  }

  /** The scheduler's figures: KV usage, waste, prefix-cache hit rate, preemptions. */
  async stats() {
    return (await this.engine).core.stats();
  }

  async close(): Promise<void> {
    const { onDevice, core } = await this.engine;
    core.close();
    onDevice.close();
  }
}

function drawProgress(done: number, total: number, started: number): void {
  const width = 30;
  const filled = total === 0 ? width : Math.round((done / total) * width);
  const seconds = (performance.now() - started) / 1000;
  const rate = seconds > 0 ? done / seconds : 0;
  process.stderr.write(
    `\rProcessed prompts: ${done}/${total} [${"#".repeat(filled)}${" ".repeat(width - filled)}] ${rate.toFixed(2)} it/s`,
  );
}
