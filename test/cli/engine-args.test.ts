// The engine's options are written once (src/engine/options.ts): every command's flags, their
// defaults, the engine's defaults and the --models-config schema all come from that table, and a
// bad value is refused naming its flag.
import { describe, expect, test } from "bun:test";
import { dtypeOfFlagName } from "../../src/backend/dtype.ts";
import { coreOptions, engineArgs, modelArgs, optionsFromFlags } from "../../src/cli/engine-args.ts";
import { defaultEngineConfig, ENGINE_OPTIONS, flagOf, MODEL_OPTIONS } from "../../src/engine/options.ts";
import { type ModelEntry, parseModelsConfig } from "../../src/server/models-config.ts";

const tables = { ...MODEL_OPTIONS, ...ENGINE_OPTIONS };
const flags: Record<string, { type?: string; default?: unknown }> = { ...modelArgs, ...engineArgs };

describe("the option table", () => {
  test("gives every option a flag whose default is the table's", () => {
    for (const [key, spec] of Object.entries(tables)) {
      const flag = flags[flagOf(key, spec)];
      expect(flag).toBeDefined();
      expect(flag!.type).toBe(spec.value.kind === "boolean" ? "boolean" : "string");
      const expected =
        "default" in spec ? (spec.value.kind === "boolean" ? spec.default : String(spec.default)) : undefined;
      expect(flag!.default).toBe(expected);
    }
  });

  test("the engine's defaults are the table's", () => {
    expect(defaultEngineConfig).toEqual({
      blockSize: 16,
      maxNumSeqs: 64,
      enablePrefixCaching: true,
      enableChunkedPrefill: true,
      scheduling: "continuous",
      gpuMemoryUtilization: 0.9,
      asyncScheduling: false,
      enforceEager: false,
    });
  });

  test("flags are kebab-case keys unless the table names one", () => {
    expect(flagOf("maxNumBatchedTokens", ENGINE_OPTIONS.maxNumBatchedTokens)).toBe("max-num-batched-tokens");
    expect(flagOf("numThreads", MODEL_OPTIONS.numThreads)).toBe("threads");
  });
});

describe("reading the flags", () => {
  test("every kind of value is read into the engine's options", () => {
    const options = coreOptions({
      model: "/m",
      device: "cuda",
      dtype: "bfloat16",
      threads: "3",
      "block-size": "32",
      "enable-prefix-caching": false,
      "kv-cache-memory": "2GiB",
      "gpu-memory-utilization": "0.5",
      "enforce-eager": true,
      scheduling: "static",
      tokenizer: "/t",
      "gguf-file": "model-Q8_0.gguf",
      quantization: "q4_k",
    });
    expect(options).toEqual({
      model: "/m",
      device: "cuda",
      dtype: "bfloat16",
      numThreads: 3,
      blockSize: 32,
      enablePrefixCaching: false,
      kvCacheMemory: 2 * 2 ** 30,
      gpuMemoryUtilization: 0.5,
      enforceEager: true,
      scheduling: "static",
      tokenizer: "/t",
      ggufFile: "model-Q8_0.gguf",
      quantization: "q4_k",
    });
  });

  test("--dtype takes vLLM's spellings: half and float too, each naming one dtype", () => {
    for (const [name, dtype] of [
      ["half", "f16"],
      ["float16", "f16"],
      ["float", "f32"],
      ["float32", "f32"],
      ["bfloat16", "bf16"],
    ] as const) {
      expect(coreOptions({ dtype: name }).dtype).toBe(name);
      expect(dtypeOfFlagName(name)).toBe(dtype);
    }
    expect(() => coreOptions({ dtype: "fp8" })).toThrow(/--dtype/);
  });

  test("a flag not given is left to the engine", () => {
    expect(optionsFromFlags(ENGINE_OPTIONS, {})).toEqual({});
  });

  test("a bad value names its flag", () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ "block-size": "0" }, /--block-size must be an integer >= 1, got "0"/],
      [{ "gpu-memory-utilization": "1.5" }, /--gpu-memory-utilization must be in \(0, 1\], got "1.5"/],
      [{ "kv-cache-memory": "lots" }, /--kv-cache-memory must be a size like 4GiB/],
      [{ scheduling: "fifo" }, /--scheduling must be one of continuous, static, static-drop, got "fifo"/],
    ];
    for (const [args, message] of cases) expect(() => optionsFromFlags(ENGINE_OPTIONS, args)).toThrow(message);
  });
});

describe("--models-config", () => {
  test("takes every option of the table under its key", () => {
    const entry = {
      model: "/m",
      device: "cpu",
      dtype: "float32",
      loadFormat: "dummy",
      seed: 1,
      numThreads: 2,
      batchInvariant: true,
      tokenizer: "/t",
      generationConfig: "vllm",
      ggufFile: "model-Q8_0.gguf",
      quantization: "q4_k",
      blockSize: 8,
      maxNumSeqs: 4,
      maxNumBatchedTokens: 64,
      maxModelLen: 128,
      enablePrefixCaching: false,
      enableChunkedPrefill: false,
      scheduling: "static",
      kvCacheMemory: "8MiB",
      gpuMemoryUtilization: 0.25,
      asyncScheduling: false,
      enforceEager: true,
    };
    expect(
      Object.keys(entry)
        .filter((k) => k !== "model")
        .sort(),
    ).toEqual(Object.keys(tables).sort());
    expect(parseModelsConfig("models.json", JSON.stringify([entry]))).toEqual([entry as ModelEntry]);
  });

  test("an unknown key or a bad value is refused, naming the entry", () => {
    expect(() => parseModelsConfig("models.json", JSON.stringify([{ model: "/m", maxNumSeq: 4 }]))).toThrow(
      /models\.json.*maxNumSeq/,
    );
    expect(() => parseModelsConfig("models.json", JSON.stringify([{ model: "/m", blockSize: 0 }]))).toThrow(
      /models\.json at 0\.blockSize/,
    );
  });
});
