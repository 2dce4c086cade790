#!/usr/bin/env python3
"""PyTorch's figures for `vllm-ts bench kernels --torch-baseline FILE.json`.

Times torch.matmul and causal torch.nn.functional.scaled_dot_product_attention in bf16 on the
shapes of `vllm-ts bench kernels --sweep matmul,prefill-attention` (Llama-3.1-8B unless --config)
and writes them as JSON. Run it on the same machine as the vllm-ts sweep; the sweep then adds
fraction_of_torch = torch's time / ours to every matching row (above 1: ours is faster).

Needs only torch (a CUDA build for --device cuda, the default):
  python3 bench/torch_baseline.py --output-json torch-baseline.json

Timing follows src/bench/kernels/timing.ts exactly: one warm-up call, then samples of as many
back-to-back calls as fill about 2 ms followed by one synchronize, repeated for at least
--min-time-ms and --repeats samples; the fastest sample's time per call counts. On CUDA a sample
is one replay of a CUDA graph of its calls, so that the host's launches are not what is timed.
Matmul weights rotate through --cold-mib of copies so that they come from DRAM, as ours do.

Prefill attention is one causal chunk per sequence: q, k and v of query_len tokens each, laid out
token-major ([batch, tokens, heads, head_dim], viewed as [batch, heads, tokens, head_dim]) as a
model's projections produce them. FLOP count, as in the vllm-ts sweep and FlashAttention's
benchmarks: 4 * num_seqs * num_q_heads * head_dim * query_len^2 / 2.
"""
import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import time

import torch

# meta-llama/Llama-3.1-8B-Instruct (bench/models/llama-3.1-8b/config.json)
LLAMA_3_1_8B = {"name": "llama-3.1-8b", "hidden_size": 4096, "intermediate_size": 14336,
                "num_q_heads": 32, "num_kv_heads": 8, "head_dim": 128}


def integer_list(text):
    values = [int(item) for item in text.split(",") if item.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of positive integers, got {text!r}")
    return values


def model_from_config(path):
    """The shapes from a model folder's config.json (or the file itself)."""
    if os.path.isdir(path):
        path = os.path.join(path, "config.json")
    with open(path) as file:
        config = json.load(file)
    heads = config["num_attention_heads"]
    return {
        "name": os.path.basename(os.path.dirname(os.path.abspath(path))),
        "hidden_size": config["hidden_size"],
        "intermediate_size": config["intermediate_size"],
        "num_q_heads": heads,
        "num_kv_heads": config.get("num_key_value_heads", heads),
        "head_dim": config.get("head_dim") or config["hidden_size"] // heads,
    }


def matmul_layers(model):
    """A decoder layer's linear layers as (name, n, k), q/k/v and gate/up fused as vllm-ts runs them."""
    q_dim = model["num_q_heads"] * model["head_dim"]
    return [
        ("qkv", q_dim + 2 * model["num_kv_heads"] * model["head_dim"], model["hidden_size"]),
        ("o", model["hidden_size"], q_dim),
        ("gate_up", 2 * model["intermediate_size"], model["hidden_size"]),
        ("down", model["hidden_size"], model["intermediate_size"]),
    ]


class Timer:
    def __init__(self, device, min_seconds, min_repeats, sample_seconds=0.002):
        self.device = device
        self.min_seconds = min_seconds
        self.min_repeats = min_repeats
        self.sample_seconds = sample_seconds

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def best_seconds(self, run, rotation=1):
        """Seconds of one call of run(call_index), as timing.ts's bestSeconds measures them."""
        run(0)
        self.sync()
        t0 = time.perf_counter()
        run(1)
        self.sync()
        single = time.perf_counter() - t0

        def calls_for(seconds_per_call):
            calls = min(10_000, math.ceil(self.sample_seconds / max(seconds_per_call, 1e-9)))
            return max(1, math.ceil(calls / rotation)) * rotation

        if self.device.type == "cuda":
            return self.fastest_graph_replay(run, calls_for, single)
        calls = calls_for(single)
        next_call = [2]

        def sample():
            s0 = time.perf_counter()
            for _ in range(calls):
                run(next_call[0])
                next_call[0] += 1
            self.sync()
            return (time.perf_counter() - s0) / calls

        return self.fastest_sample(single, sample)

    def fastest_sample(self, best, sample):
        start = time.perf_counter()
        count = 1
        while count <= self.min_repeats or time.perf_counter() - start < self.min_seconds:
            best = min(best, sample())
            count += 1
        return best

    def fastest_graph_replay(self, run, calls_for, single):
        """Samples replay a CUDA graph of their calls, as timing.ts's do on CUDA. The calls are
        captured on the stream they warmed up on, so that cuBLAS's handle and workspace for that
        stream exist before the capture (creating them is not allowed during one)."""
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            run(0)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        self.sync()

        def capture(calls):
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=stream):
                for call in range(calls):
                    run(call)
            return graph

        def replay_seconds(graph):
            s0 = time.perf_counter()
            graph.replay()
            self.sync()
            return time.perf_counter() - s0

        calls = calls_for(single)
        graph = capture(calls)
        estimate = replay_seconds(graph) / calls
        if calls_for(estimate) > calls:
            del graph
            calls = calls_for(estimate)
            graph = capture(calls)
            replay_seconds(graph)
        return self.fastest_sample(min(single, estimate), lambda: replay_seconds(graph) / calls)


def copy_bandwidth_gbs(timer, device, nbytes):
    src = torch.ones(nbytes // 2, dtype=torch.bfloat16, device=device)
    dst = torch.empty_like(src)
    seconds = timer.best_seconds(lambda _: dst.copy_(src))
    return 2 * src.numel() * 2 / seconds / 1e9


def time_matmuls(timer, device, model, row_counts, cold_bytes):
    rows = []
    for name, n, k in matmul_layers(model):
        weight_bytes = n * k * 2
        copies = [torch.empty(n, k, dtype=torch.bfloat16, device=device).uniform_(-0.05, 0.05)
                  for _ in range(max(1, math.ceil(cold_bytes / weight_bytes)))]
        x = torch.empty(max(row_counts), k, dtype=torch.bfloat16, device=device).uniform_(-1, 1)
        out = torch.empty(max(row_counts), n, dtype=torch.bfloat16, device=device)
        for m in row_counts:
            xm, outm = x[:m], out[:m]
            seconds = timer.best_seconds(lambda call: torch.matmul(xm, copies[call % len(copies)].t(), out=outm),
                                         len(copies))
            rows.append({"layer": name, "m": m, "n": n, "k": k, "time_us": seconds * 1e6,
                         "tflops": 2 * m * n * k / seconds / 1e12, "weight_gbs": weight_bytes / seconds / 1e9})
        del copies, x, out
    return rows


def sdpa_call(gqa_native):
    def call(q, k, v):
        if gqa_native:
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    return call


def supports_enable_gqa(device):
    """enable_gqa arrived in torch 2.5."""
    q = torch.zeros(1, 2, 1, 8, dtype=torch.bfloat16, device=device)
    kv = torch.zeros(1, 1, 1, 8, dtype=torch.bfloat16, device=device)
    try:
        torch.nn.functional.scaled_dot_product_attention(q, kv, kv, enable_gqa=True)
        return True
    except TypeError:
        return False


def sdpa_backend_context(backend):
    """A fresh context (sdpa_kernel's can be entered once) that forces one SDPA implementation."""
    if backend == "default":
        return contextlib.nullcontext()
    import torch.nn.attention
    return torch.nn.attention.sdpa_kernel(getattr(torch.nn.attention.SDPBackend, backend.upper()))


def time_prefill(timer, device, model, num_seqs_list, query_lens, backend):
    hq, hkv, d = model["num_q_heads"], model["num_kv_heads"], model["head_dim"]
    # Without enable_gqa, K and V are expanded to the query heads once, outside the timing (the
    # kernel then reads each KV head once per query head, as a GQA kernel need not).
    gqa_native = supports_enable_gqa(device)
    rows = []
    for num_seqs in num_seqs_list:
        for length in query_lens:
            q = torch.empty(num_seqs, length, hq, d, dtype=torch.bfloat16, device=device).uniform_(-1, 1).transpose(1, 2)
            k = torch.empty(num_seqs, length, hkv, d, dtype=torch.bfloat16, device=device).uniform_(-1, 1).transpose(1, 2)
            v = torch.empty(num_seqs, length, hkv, d, dtype=torch.bfloat16, device=device).uniform_(-1, 1).transpose(1, 2)
            if not gqa_native and hkv != hq:
                k = k.repeat_interleave(hq // hkv, dim=1)
                v = v.repeat_interleave(hq // hkv, dim=1)
            call = sdpa_call(gqa_native)
            with sdpa_backend_context(backend):
                seconds = timer.best_seconds(lambda _: call(q, k, v))
            flops = 4 * num_seqs * hq * d * length * length / 2
            rows.append({"num_seqs": num_seqs, "query_len": length, "context_len": length, "num_q_heads": hq,
                         "num_kv_heads": hkv, "head_dim": d, "causal": True, "time_us": seconds * 1e6,
                         "flops": flops, "tflops": flops / seconds / 1e12})
            del q, k, v
    return rows, ("enable_gqa" if gqa_native else "expanded_kv")


def matmul_setting(name):
    """A torch.backends.cuda.matmul flag, or None where this torch has no such flag."""
    try:
        return getattr(torch.backends.cuda.matmul, name)
    except (AttributeError, AssertionError):
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="a model's config.json for the shapes (default: Llama-3.1-8B)")
    parser.add_argument("--matmul-rows", type=integer_list, default=integer_list("1,8,64,256,1024,4096"))
    parser.add_argument("--prefill-seqs", type=integer_list, default=integer_list("1,4,16"))
    parser.add_argument("--prefill-lens", type=integer_list, default=integer_list("512,1024,2048,4096,8192"))
    parser.add_argument("--skip", choices=["matmul", "prefill-attention"], action="append", default=[])
    parser.add_argument("--sdpa-backend", default="default", choices=["default", "flash_attention", "efficient_attention", "cudnn_attention", "math"],
                        help="force one SDPA implementation (default: torch's own choice)")
    parser.add_argument("--min-time-ms", type=float, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold-mib", type=float, default=256)
    parser.add_argument("--copy-mib", type=float, default=512)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (a smoke test of this script)")
    parser.add_argument("--output-json", required=True)
    args = parser.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("torch sees no CUDA device (use --device cpu only to try the script)")
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or "cpu")
    if "prefill-attention" not in args.skip and not hasattr(torch.nn.functional, "scaled_dot_product_attention"):
        parser.error(f"torch {torch.__version__} has no scaled_dot_product_attention (torch >= 2.0 has); --skip prefill-attention times the matmuls alone")
    model = model_from_config(args.config) if args.config else LLAMA_3_1_8B
    timer = Timer(device, args.min_time_ms / 1000, args.repeats)
    torch.manual_seed(0)

    report = {
        "tool": "bench/torch_baseline.py",
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "device": device_name,
        "dtype": "bf16",
        "model": model,
        "config": {"min_time_ms": args.min_time_ms, "repeats": args.repeats, "cold_mib": args.cold_mib,
                   "sdpa_backend": args.sdpa_backend,
                   "allow_bf16_reduced_precision_reduction": matmul_setting("allow_bf16_reduced_precision_reduction")},
        "copy_bandwidth_gbs": copy_bandwidth_gbs(timer, device, int(args.copy_mib * 2**20)),
        "matmul": [],
        "prefill_attention": [],
    }
    print(f"torch {torch.__version__} on {device_name}; copy bandwidth {report['copy_bandwidth_gbs']:.1f} GB/s (read + write)")
    if "matmul" not in args.skip:
        report["matmul"] = time_matmuls(timer, device, model, args.matmul_rows, args.cold_mib * 2**20)
        for r in report["matmul"]:
            print(f"matmul {r['layer']:8} {r['m']:5} x {r['n']} x {r['k']}: {r['time_us']:10.1f} us {r['tflops']:8.2f} TFLOP/s")
    if "prefill-attention" not in args.skip:
        report["prefill_attention"], report["config"]["gqa"] = time_prefill(
            timer, device, model, args.prefill_seqs, args.prefill_lens, args.sdpa_backend)
        for r in report["prefill_attention"]:
            print(f"sdpa causal {r['num_seqs']:3} x {r['query_len']:6}: {r['time_us']:10.1f} us {r['tflops']:8.2f} TFLOP/s")
    report["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    with open(args.output_json, "w") as file:
        json.dump(report, file, indent=2)
        file.write("\n")


if __name__ == "__main__":
    main()
