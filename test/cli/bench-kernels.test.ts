// `dist/vllm-ts bench kernels`: the quick look and the GPU sweeps (decode attention bandwidth,
// prefill attention and matmul TFLOP/s, fractions of a torch baseline) run on the CPU backend on
// tiny shapes and write well-formed JSON; the sweeps also run on the emulated CUDA library, where
// the matmul sweep opens a second backend for our own kernels. Plus the pure parts: the peak
// bandwidth table, the torch-baseline file, the memory plan of an attention case.

import { dlopen } from "bun:ffi";
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Backend, NativeError } from "../../src/backend/backend.ts";
import { openOwnKernelsBackend } from "../../src/bench/kernels/cublas-toggle.ts";
import type { DecodeAttentionRow } from "../../src/bench/kernels/decode-attention-sweep.ts";
import { runDecodeAttentionSweep } from "../../src/bench/kernels/decode-attention-sweep.ts";
import { peakBandwidth } from "../../src/bench/kernels/device-peaks.ts";
import type { MatmulRow } from "../../src/bench/kernels/matmul-sweep.ts";
import type { MoeRow } from "../../src/bench/kernels/moe-sweep.ts";
import { planPagedAttention } from "../../src/bench/kernels/paged-attention-timing.ts";
import type { PrefillAttentionRow } from "../../src/bench/kernels/prefill-attention-sweep.ts";
import { prefillFlops } from "../../src/bench/kernels/prefill-attention-sweep.ts";
import {
  matmulFractionOfTorch,
  parseTorchBaseline,
  prefillFractionOfTorch,
} from "../../src/bench/kernels/torch-baseline.ts";
import { QUICK_TIMING_FLAGS, TINY_KERNEL_MODEL_CONFIG } from "../helpers/tiny-kernel-model.ts";

const EXECUTABLE = resolve(import.meta.dir, "../../dist/vllm-ts");
const EMULATED_CUDA = resolve(import.meta.dir, "../../build/libvllm_ts_cuda_emu.so");
const SLOW = 60_000;

const TINY_CONFIG = TINY_KERNEL_MODEL_CONFIG;
const QUICK = QUICK_TIMING_FLAGS;

let dir: string;
let tinyModel: string;

beforeAll(() => {
  if (!existsSync(EXECUTABLE)) throw new Error(`${EXECUTABLE} is missing: run make first`);
  dir = mkdtempSync(join(tmpdir(), "vllm-ts-bench-kernels-"));
  tinyModel = join(dir, "tiny");
  mkdirSync(tinyModel);
  writeFileSync(join(tinyModel, "config.json"), JSON.stringify(TINY_CONFIG));
});

/** Runs `vllm-ts bench kernels ...args --output-json FILE`; returns stdout and the parsed report. */
function benchKernels(name: string, args: string[], env: Record<string, string> = {}) {
  const file = join(dir, `${name}.json`);
  // The library is the one `env` names, else the embedded one, whatever this process was given.
  const { VLLM_TS_LIBRARY: _, ...inherited } = process.env;
  const result = Bun.spawnSync([EXECUTABLE, "bench", "kernels", ...args, "--output-json", file], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...inherited, ...env },
  });
  if (result.exitCode !== 0) throw new Error(`bench kernels failed (${result.exitCode}): ${result.stderr.toString()}`);
  return {
    stdout: result.stdout.toString(),
    stderr: result.stderr.toString(),
    report: JSON.parse(readFileSync(file, "utf8")),
  };
}

/** The header every `bench kernels` report starts with. */
interface ReportHeader {
  device: { backend: string; name: string };
  baselines: { copy_bandwidth_gbs: number };
}

function expectHeader(report: ReportHeader, mode: string, backend: string, actDtype: string) {
  const packageJson = JSON.parse(readFileSync(resolve(import.meta.dir, "../../package.json"), "utf8"));
  expect(report).toMatchObject({ version: packageJson.version, command: "bench kernels", mode, act_dtype: actDtype });
  // (toMatchObject with expect.any would write the matcher into the report: Bun 1.4 does.)
  expect(report.device.backend).toBe(backend);
  expect(typeof report.device.name).toBe("string");
  expect(report.baselines.copy_bandwidth_gbs).toBeGreaterThan(0);
}

describe("peak memory bandwidth table", () => {
  test("knows the data-sheet figure of each listed GPU by the name the driver reports", () => {
    expect(peakBandwidth("NVIDIA H100 80GB HBM3")).toEqual({ entry: "H100 SXM", bandwidthGBs: 3350 });
    expect(peakBandwidth("NVIDIA H100 PCIe")).toEqual({ entry: "H100 PCIe", bandwidthGBs: 2000 });
    expect(peakBandwidth("NVIDIA H100 NVL")?.bandwidthGBs).toBe(3900);
    expect(peakBandwidth("NVIDIA H200")).toEqual({ entry: "H200", bandwidthGBs: 4800 });
    expect(peakBandwidth("NVIDIA A100-SXM4-80GB")).toEqual({ entry: "A100 80GB SXM", bandwidthGBs: 2039 });
    expect(peakBandwidth("NVIDIA A100 80GB PCIe")?.bandwidthGBs).toBe(1935);
    expect(peakBandwidth("NVIDIA A100-SXM4-40GB")).toEqual({ entry: "A100 40GB", bandwidthGBs: 1555 });
    expect(peakBandwidth("NVIDIA A100-PCIE-40GB")?.bandwidthGBs).toBe(1555);
    expect(peakBandwidth("NVIDIA L4")).toEqual({ entry: "L4", bandwidthGBs: 300 });
  });

  test("has no figure for a device it does not know, rather than a near miss", () => {
    for (const name of [
      "NVIDIA GH200 480GB",
      "NVIDIA L40S",
      "NVIDIA H100",
      "AMD EPYC (2 threads)",
      "CUDA emulation on the CPU (2 threads)",
      "",
    ]) {
      expect(peakBandwidth(name)).toBeNull();
    }
  });
});

describe("own-kernels backend", () => {
  const libc = dlopen("libc.so.6", {
    getenv: { args: ["ptr"], returns: "cstring" },
    setenv: { args: ["ptr", "ptr", "i32"], returns: "i32" },
    unsetenv: { args: ["ptr"], returns: "i32" },
  });
  const c = (text: string) => Buffer.from(`${text}\0`);
  const cEnvironment = () => {
    const value = libc.symbols.getenv(c("VT_DISABLE_CUBLAS"));
    return value === null ? null : String(value);
  };

  test("is opened with VT_DISABLE_CUBLAS=1 in the C environment (what the library's getenv reads), then the variable is as before", async () => {
    const seen: (string | null)[] = [];
    const fake = {} as Backend;
    const open = async () => {
      seen.push(cEnvironment());
      return fake;
    };
    libc.symbols.unsetenv(c("VT_DISABLE_CUBLAS"));
    expect(await openOwnKernelsBackend({ device: "cpu" }, open)).toBe(fake);
    expect(cEnvironment()).toBeNull();
    libc.symbols.setenv(c("VT_DISABLE_CUBLAS"), c("0"), 1);
    await openOwnKernelsBackend({ device: "cpu" }, open);
    expect(cEnvironment()).toBe("0");
    libc.symbols.unsetenv(c("VT_DISABLE_CUBLAS"));
    expect(seen).toEqual(["1", "1"]);
  });
});

describe("torch baseline file", () => {
  const baseline = parseTorchBaseline(
    {
      torch_version: "2.11.0",
      device: "NVIDIA H100 80GB HBM3",
      dtype: "bf16",
      matmul: [{ layer: "qkv", m: 8, n: 6144, k: 4096, time_us: 30, tflops: 13.4 }],
      prefill_attention: [
        { num_seqs: 4, query_len: 1024, num_q_heads: 32, num_kv_heads: 8, head_dim: 128, time_us: 200 },
      ],
    },
    "hand-written",
  );

  test("matches rows by shape and gives torch's time over ours", () => {
    expect(matmulFractionOfTorch(baseline, { m: 8, n: 6144, k: 4096, time_us: 40 })).toBeCloseTo(0.75, 12);
    expect(matmulFractionOfTorch(baseline, { m: 1, n: 6144, k: 4096, time_us: 40 })).toBeNull();
    const prefill = { num_seqs: 4, query_len: 1024, num_q_heads: 32, num_kv_heads: 8, head_dim: 128, time_us: 100 };
    expect(prefillFractionOfTorch(baseline, prefill)).toBeCloseTo(2, 12);
    expect(prefillFractionOfTorch(baseline, { ...prefill, num_kv_heads: 32 })).toBeNull();
  });

  test("a file with a section missing has no rows there; a malformed one is refused with the field named", () => {
    expect(parseTorchBaseline({ torch_version: "2.5", device: "x", dtype: "bf16" }, "f").matmul).toEqual([]);
    expect(() =>
      parseTorchBaseline(
        { torch_version: "2.5", device: "x", dtype: "bf16", matmul: [{ m: 1, n: 2, k: 3 }] },
        "f.json",
      ),
    ).toThrow(/f\.json: matmul\.0\.time_us/);
    expect(() => parseTorchBaseline([], "f.json")).toThrow(/--torch-baseline f\.json/);
  });
});

describe("attention case memory plan", () => {
  const decode = {
    numSeqs: 2,
    queryLen: 1,
    seqLen: 100,
    numQHeads: 4,
    numKvHeads: 2,
    headDim: 64,
    blockSize: 16,
    actDtype: "bf16" as const,
    cacheDtype: "bf16" as const,
  };

  test("counts the cached tokens' K and V, and allocates whole blocks per copy", () => {
    const plan = planPagedAttention(decode, 0, Infinity)!;
    expect(plan.kvBytes).toBe(2 * 2 * 100 * 2 * 64 * 2);
    expect(plan.copies).toBe(1);
    // 7 blocks of 16 per sequence, K and V; q and out; 7 table entries per sequence; lens and starts.
    expect(plan.deviceBytes).toBe(2 * 2 * 7 * 16 * 2 * 64 * 2 + 2 * 2 * 4 * 64 * 2 + 4 * 2 * 7 + 4 * 5);
  });

  test("rotates through copies of a small cache up to the cold size, within the budget; null when one does not fit", () => {
    const one = planPagedAttention(decode, 0, Infinity)!;
    expect(planPagedAttention(decode, 10 * 2 ** 20, Infinity)!.copies).toBeGreaterThan(50);
    expect(planPagedAttention(decode, 10 * 2 ** 20, 3 * one.deviceBytes)!.copies).toBe(3);
    expect(planPagedAttention(decode, 0, one.deviceBytes - 1)).toBeNull();
  });

  test("a case whose op fails is listed with the error, and the sweep goes on", async () => {
    const backend = await Backend.open({ device: "cpu" });
    try {
      // The real CPU backend, but for a vt_paged_attention that refuses every call.
      const refusing = Object.assign(Object.create(backend), {
        pagedAttention() {
          throw new NativeError("vt_paged_attention", 3, "head_dim 64 is not supported");
        },
      }) as Backend;
      const model = { name: "tiny", hiddenSize: 128, intermediateSize: 320, numQHeads: 4, numKvHeads: 2, headDim: 64 };
      const setup = {
        model,
        blockSize: 16,
        actDtype: "f32" as const,
        cacheDtype: "bf16" as const,
        timing: { minSeconds: 0, minRepeats: 1 },
        memoryFraction: 0.5,
      };
      const sweep = runDecodeAttentionSweep(
        refusing,
        setup,
        { batchSizes: [1, 2], contextLens: [32], coldBytes: 0 },
        { copyBandwidthGBs: 1, peakBandwidthGBs: null },
      );
      expect(sweep.results).toEqual([]);
      expect(sweep.failed).toEqual([
        { batch_size: 1, context_len: 32, error: "vt_paged_attention failed (status 3): head_dim 64 is not supported" },
        { batch_size: 2, context_len: 32, error: "vt_paged_attention failed (status 3): head_dim 64 is not supported" },
      ]);
      const working = runDecodeAttentionSweep(
        backend,
        setup,
        { batchSizes: [1], contextLens: [32], coldBytes: 0 },
        { copyBandwidthGBs: 1, peakBandwidthGBs: null },
      );
      expect(working.results.length).toBe(1);
      expect(working.results[0]!.fraction_of_peak_bandwidth).toBeUndefined();
    } finally {
      backend.close();
    }
  });

  test("prefill FLOPs: two matrix products of 2 FLOP per multiply-add, half of them under the causal mask", () => {
    expect(prefillFlops(4, 1024, 32, 128)).toBe((4 * 4 * 32 * 128 * 1024 * 1024) / 2);
  });
});

describe("bench kernels on the CPU backend", () => {
  test(
    "without --sweep: every op once, activations in f32 as the model runs on the CPU",
    () => {
      const { stdout, report } = benchKernels("summary", ["--device", "cpu", ...QUICK]);
      expect(stdout).toContain("paged_attention decode");
      expectHeader(report, "summary", "cpu", "f32");
      expect(report.baselines.peak_bandwidth_gbs).toBeNull();
      expect(report.matmul.length).toBe(8);
      for (const row of report.matmul) {
        expect(row).toMatchObject({ act_dtype: "f32", weight_dtype: "bf16" });
        expect(row.gflops).toBeGreaterThan(0);
      }
      expect(report.paged_attention_decode).toMatchObject({ act_dtype: "f32", cache_dtype: "bf16" });
      expect(report.paged_attention_decode.kv_read_gbs).toBeGreaterThan(0);
      expect(report.rms_norm.act_dtype).toBe("f32");
      expect(report.silu_and_mul.gbs).toBeGreaterThan(0);
    },
    SLOW,
  );

  test(
    "--sweep all on tiny shapes: decode bandwidth, prefill and matmul TFLOP/s, fractions of peak and of torch",
    () => {
      const torchFile = join(dir, "torch.json");
      writeFileSync(
        torchFile,
        JSON.stringify({
          torch_version: "test",
          device: "hand-written",
          dtype: "bf16",
          matmul: [{ layer: "qkv", m: 8, n: 512, k: 128, time_us: 10 }],
          prefill_attention: [
            { num_seqs: 2, query_len: 32, num_q_heads: 4, num_kv_heads: 2, head_dim: 64, time_us: 50 },
          ],
        }),
      );
      const { stdout, stderr, report } = benchKernels("sweep-cpu", [
        "--device",
        "cpu",
        "--sweep",
        "all",
        "--model",
        tinyModel,
        "--batch-sizes",
        "1,3",
        "--context-lens",
        "40,128",
        "--prefill-seqs",
        "1,2",
        "--prefill-lens",
        "16,32",
        "--matmul-rows",
        "1,8",
        "--moe-tokens",
        "1",
        "--moe-model",
        "qwen3-30b-a3b",
        "--peak-gbs",
        "100",
        "--torch-baseline",
        torchFile,
        ...QUICK,
      ]);
      expect(stdout).toContain("decode paged attention");
      expect(stderr).toContain('measured on "hand-written"');
      expectHeader(report, "sweep", "cpu", "f32");
      expect(report.device).toMatchObject({ peak_bandwidth_gbs: 100, peak_bandwidth_entry: "--peak-gbs" });
      expect(report.model).toMatchObject({
        name: "tiny",
        num_q_heads: 4,
        num_kv_heads: 2,
        head_dim: 64,
        block_size: 16,
      });
      expect(report.baselines).toMatchObject({
        peak_bandwidth_gbs: 100,
        torch: { file: torchFile, device: "hand-written", torch_version: "test" },
      });
      const copy = report.baselines.copy_bandwidth_gbs;

      const decode = report.decode_attention;
      expect(decode.cache_dtype).toBe("bf16");
      expect(decode.skipped).toEqual([]);
      expect(decode.failed).toEqual([]);
      expect(decode.results.map((r: DecodeAttentionRow) => [r.batch_size, r.context_len])).toEqual([
        [1, 40],
        [1, 128],
        [3, 40],
        [3, 128],
      ]);
      for (const r of decode.results) {
        expect(r.kv_bytes).toBe(2 * r.batch_size * r.context_len * 2 * 64 * 2);
        expect(r.kv_copies).toBeGreaterThanOrEqual(1);
        expect(r.kv_read_gbs).toBeCloseTo(r.kv_bytes / r.time_us / 1e3, 1);
        expect(r.fraction_of_copy_bandwidth).toBeCloseTo(r.kv_read_gbs / copy, 2);
        expect(r.fraction_of_peak_bandwidth).toBeCloseTo(r.kv_read_gbs / 100, 2);
      }

      const prefill = report.prefill_attention;
      expect(prefill.flop_count).toContain("query_len^2 / 2");
      expect(prefill.results.length).toBe(4);
      for (const r of prefill.results) {
        expect(r).toMatchObject({
          context_len: r.query_len,
          num_q_heads: 4,
          num_kv_heads: 2,
          head_dim: 64,
          causal: true,
        });
        expect(r.flops).toBe(prefillFlops(r.num_seqs, r.query_len, 4, 64));
        expect(r.tflops).toBeCloseTo(r.flops / r.time_us / 1e6, 3);
      }
      const matched = prefill.results.find((r: PrefillAttentionRow) => r.num_seqs === 2 && r.query_len === 32);
      expect(matched.fraction_of_torch).toBeCloseTo(50 / matched.time_us, 2);
      expect(
        prefill.results
          .filter((r: PrefillAttentionRow) => r !== matched)
          .every((r: PrefillAttentionRow) => r.fraction_of_torch === null),
      ).toBe(true);

      expect(prefill.failed).toEqual([]);
      const matmul = report.matmul;
      expect(matmul.failed).toEqual([]);
      expect(matmul).toMatchObject({ act_dtype: "f32", weight_dtype: "bf16", cublas_loadable: false });
      expect(Object.keys(matmul.paths)).toEqual(["default"]);
      expect(matmul.results.map((r: MatmulRow) => `${r.layer} ${r.m}x${r.n}x${r.k}`)).toEqual([
        "qkv 1x512x128",
        "qkv 8x512x128",
        "o 1x128x256",
        "o 8x128x256",
        "gate_up 1x640x128",
        "gate_up 8x640x128",
        "down 1x128x320",
        "down 8x128x320",
      ]);
      for (const r of matmul.results) {
        expect(r).toMatchObject({ path: "default", act_dtype: "f32", weight_dtype: "bf16" });
        expect(r.tflops).toBeCloseTo((2 * r.m * r.n * r.k) / r.time_us / 1e6, 3);
        expect(r.weight_gbs).toBeCloseTo((r.n * r.k * 2) / r.time_us / 1e3, 1);
        expect(r.fraction_of_peak_bandwidth).toBeCloseTo(r.weight_gbs / 100, 2);
      }
      const moe = report.moe;
      expect(moe.failed).toEqual([]);
      expect(moe.results.map((r: MoeRow) => `${r.model} ${r.layer} ${r.tokens} ${r.slots} ${r.n}x${r.k}`)).toEqual([
        "qwen3-30b-a3b gate_up 1 8 1536x2048",
        "qwen3-30b-a3b down 1 8 2048x768",
      ]);
      for (const r of moe.results) {
        // One token's 8 slots go to 8 different experts, each read once.
        expect(r.experts_used).toBe(8);
        expect(r.tflops).toBeCloseTo((2 * r.slots * r.n * r.k) / r.time_us / 1e6, 3);
        expect(r.weight_gbs).toBeCloseTo((r.experts_used * r.n * r.k * 2) / r.time_us / 1e3, 1);
      }
      const qkv8 = matmul.results.find((r: MatmulRow) => r.layer === "qkv" && r.m === 8);
      expect(qkv8.fraction_of_torch).toBeCloseTo(10 / qkv8.time_us, 2);
      expect(
        matmul.results.filter((r: MatmulRow) => r !== qkv8).every((r: MatmulRow) => r.fraction_of_torch === null),
      ).toBe(true);
    },
    SLOW,
  );

  test(
    "the moe sweep with quantized experts (--weight-format q8_0): each used expert's blocks read once",
    () => {
      const { report } = benchKernels("sweep-moe-q8_0", [
        "--device",
        "cpu",
        "--sweep",
        "moe",
        "--moe-model",
        "tiny",
        "--moe-tokens",
        "3",
        "--weight-format",
        "q8_0",
        ...QUICK,
      ]);
      expect(report.moe.failed).toEqual([]);
      expect(report.moe.results).toMatchObject([
        { model: "tiny", layer: "gate_up", n: 64, k: 64, weight_dtype: "q8_0" },
        { model: "tiny", layer: "down", n: 64, k: 32, weight_dtype: "q8_0" },
      ]);
      // Q8_0: 34 bytes per block of 32 values.
      for (const r of report.moe.results)
        expect(r.weight_gbs).toBeCloseTo((r.experts_used * (r.n * r.k * 34)) / 32 / r.time_us / 1e3, 1);
    },
    SLOW,
  );

  test(
    "a decode case that does not fit in the memory allowed is skipped, and says what it needs",
    () => {
      const { stdout, report } = benchKernels("sweep-skip", [
        "--device",
        "cpu",
        "--sweep",
        "decode-attention",
        "--model",
        tinyModel,
        "--batch-sizes",
        "2",
        "--context-lens",
        "64",
        "--memory-fraction",
        "1e-15",
        ...QUICK,
      ]);
      expect(stdout).toContain("skipped batch 2 x 64");
      expect(report.decode_attention.results).toEqual([]);
      const [skipped, ...more] = report.decode_attention.skipped;
      expect(more).toEqual([]);
      expect(Object.keys(skipped).sort()).toEqual([
        "batch_size",
        "budget_bytes",
        "context_len",
        "needed_bytes",
        "reason",
      ]);
      expect(skipped).toMatchObject({ batch_size: 2, context_len: 64, reason: "KV cache does not fit in free memory" });
      expect(skipped.needed_bytes).toBeGreaterThan(skipped.budget_bytes);
      expect(report.baselines.peak_bandwidth_gbs).toBeNull();
      expect(report.prefill_attention).toBeUndefined();
    },
    SLOW,
  );

  test("refuses a malformed list or an unknown sweep, and --torch-baseline without --sweep", () => {
    for (const args of [
      ["--sweep", "decode"],
      ["--sweep", "matmul", "--matmul-rows", "1,x"],
      ["--torch-baseline", "f.json"],
    ]) {
      const { VLLM_TS_LIBRARY: _, ...env } = process.env;
      const result = Bun.spawnSync([EXECUTABLE, "bench", "kernels", "--device", "cpu", ...args], {
        stdout: "pipe",
        stderr: "pipe",
        env,
      });
      expect(result.exitCode).toBe(1);
      expect(result.stderr.toString()).toMatch(/--sweep|--matmul-rows|--torch-baseline/);
    }
  });
});

describe("bench kernels on the emulated CUDA library", () => {
  test(
    "activations in bf16, and the matmul sweep on both paths (a second backend with VT_DISABLE_CUBLAS=1)",
    () => {
      if (!existsSync(EMULATED_CUDA)) throw new Error(`${EMULATED_CUDA} is missing: run make ${EMULATED_CUDA}`);
      const { report } = benchKernels(
        "sweep-emulated",
        [
          "--sweep",
          "all",
          "--model",
          tinyModel,
          "--batch-sizes",
          "1",
          "--context-lens",
          "32",
          "--prefill-seqs",
          "1",
          "--prefill-lens",
          "16",
          "--matmul-rows",
          "1",
          "--moe-model",
          "tiny",
          "--moe-tokens",
          "3",
          ...QUICK,
        ],
        { VLLM_TS_LIBRARY: EMULATED_CUDA },
      );
      expectHeader(report, "sweep", "cuda", "bf16");
      expect(report.device.name).toContain("CUDA emulation");
      expect(report.decode_attention.results).toMatchObject([{ batch_size: 1, context_len: 32 }]);
      expect(report.decode_attention.results[0].kv_read_gbs).toBeGreaterThan(0);
      expect(report.prefill_attention.results).toMatchObject([{ num_seqs: 1, query_len: 16 }]);
      expect(report.matmul).toMatchObject({ act_dtype: "bf16", weight_dtype: "bf16" });
      expect(Object.keys(report.matmul.paths)).toEqual(["default", "own_kernels"]);
      expect(report.matmul.results.length).toBe(8);
      for (const path of ["default", "own_kernels"]) {
        const rows = report.matmul.results.filter((r: MatmulRow) => r.path === path);
        expect(rows.map((r: MatmulRow) => r.layer)).toEqual(["qkv", "o", "gate_up", "down"]);
        for (const r of rows) expect(r.tflops).toBeGreaterThan(0);
      }
      expect(report.moe.failed).toEqual([]);
      expect(report.moe.results).toMatchObject([
        { model: "tiny", layer: "gate_up", tokens: 3, slots: 6, n: 64, k: 64, act_dtype: "bf16" },
        { model: "tiny", layer: "down", tokens: 3, slots: 6, n: 64, k: 32, act_dtype: "bf16" },
      ]);
    },
    SLOW,
  );
});
