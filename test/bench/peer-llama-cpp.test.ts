// The llama.cpp side-by-side benchmark's parts that need neither llama.cpp nor minutes: the tools'
// outputs are read right among their log lines, and one round alternates the engines.
// (The benchmark itself, bench/peer/llama-cpp.ts, is run by hand: see bench/README.md.)
import { describe, expect, test } from "bun:test";
import { parseBatchedBench, parseLlamaBench } from "../../bench/peer/llama-cpp-tools.ts";
import { roundOfMeasurements } from "../../bench/peer/measurements.ts";
import { FIGURE_GROUPS, type PeerWorkload } from "../../bench/peer/workload.ts";

const LLAMA_BENCH_OUTPUT = [
  "load_backend: loaded CPU backend from build/llama.cpp/lib/libggml-cpu-zen4.so",
  '{"build_commit": "0ad4a86", "model_filename": "m.gguf", "n_threads": 2, "type_k": "f16", "flash_attn": -1, "n_prompt": 512, "n_gen": 0, "n_depth": 0, "avg_ns": 800000000, "avg_ts": 640.5, "stddev_ts": 3.1, "samples_ns": [ 800000000 ],"samples_ts": [ 640.5 ]}',
  '{"build_commit": "0ad4a86", "model_filename": "m.gguf", "n_threads": 2, "type_k": "f16", "flash_attn": -1, "n_prompt": 0, "n_gen": 32, "n_depth": 0, "avg_ns": 250000000, "avg_ts": 128.25, "stddev_ts": 1.0, "samples_ns": [ 250000000 ],"samples_ts": [ 128.25 ]}',
].join("\n");

const BATCHED_BENCH_OUTPUT = [
  "0.00.210.247 W llama_context: n_ctx is not divisible by n_seq_max - rounding down to 2048",
  '{"n_kv_max": 2048, "n_batch": 2048, "n_ubatch": 512, "flash_attn": -1, "n_threads": 2, "pp": 128, "tg": 32, "pl": 1, "n_kv": 160, "t_pp": 0.2, "speed_pp": 640.0, "t_tg": 0.25, "speed_tg": 128.0, "t": 0.45, "speed": 355.5}',
  '{"n_kv_max": 2048, "n_batch": 2048, "n_ubatch": 512, "flash_attn": -1, "n_threads": 2, "pp": 128, "tg": 32, "pl": 8, "n_kv": 1280, "t_pp": 1.6, "speed_pp": 640.0, "t_tg": 1.0, "speed_tg": 256.0, "t": 2.6, "speed": 492.3}',
  "{ not json",
  "llama_perf_context_print:        load time =      80.11 ms",
].join("\n");

describe("reading llama.cpp's outputs", () => {
  test("llama-bench: each test's mean tokens/s, its set-up without the test's own fields", () => {
    const tests = parseLlamaBench(LLAMA_BENCH_OUTPUT);
    expect(tests.map(({ nPrompt, nGen, tokensPerSecond }) => [nPrompt, nGen, tokensPerSecond])).toEqual([
      [512, 0, 640.5],
      [0, 32, 128.25],
    ]);
    expect(tests[0]!.setup).toEqual({ build_commit: "0ad4a86", n_threads: 2, type_k: "f16", flash_attn: -1 });
  });

  test("llama-batched-bench: decode and total tokens/s per number of sequences, log lines skipped", () => {
    const rows = parseBatchedBench(BATCHED_BENCH_OUTPUT);
    expect(
      rows.map(({ parallel, decodeTokensPerSecond, totalTokensPerSecond }) => [
        parallel,
        decodeTokensPerSecond,
        totalTokensPerSecond,
      ]),
    ).toEqual([
      [1, 128, 355.5],
      [8, 256, 492.3],
    ]);
    expect(rows[0]!.setup).toEqual({ n_kv_max: 2048, n_batch: 2048, n_ubatch: 512, flash_attn: -1, n_threads: 2 });
  });
});

test("a round with every figure alternates vllm-ts and llama.cpp, every command on the same file", () => {
  const workload: PeerWorkload = {
    groups: new Set(FIGURE_GROUPS),
    threads: 2,
    batchSizes: [8, 32, 64],
    prefillTokens: 512,
    requests: 64,
    requestInputTokens: 128,
    requestOutputTokens: 128,
  };
  const round = roundOfMeasurements("model.gguf", workload, "/tmp/scratch");
  expect(round.map((m) => m.engine)).toEqual(["vllm-ts", "llama.cpp", "vllm-ts", "llama.cpp", "vllm-ts", "llama.cpp"]);
  expect(round[1]!.argv).toContain("1,8,32,64");
  expect(round.every((m) => m.argv.includes("model.gguf"))).toBe(true);
});
