#!/usr/bin/env python3
"""The end-to-end baseline: Hugging Face transformers `generate` with static batches.

The seed document's comparison: the same requests (num-prompts random prompts of input-len tokens,
output-len new tokens each, EOS ignored) through `vllm-ts bench throughput` and through
transformers' generate, which runs them in static batches of --batch-size (every batch waits for
its longest member, the KV cache grows per batch). The model is built from a config.json alone
with random weights (AutoModelForCausalLM.from_config), in bf16 on the GPU, so that no download is
needed, as `vllm-ts bench throughput MODEL --load-format dummy` does. Writes output tokens/s as
JSON, under the same field names as `vllm-ts bench throughput --output-json`'s results.

  python3 bench/hf_generate_baseline.py bench/models/llama-3.1-8b --num-prompts 1000 \\
      --input-len 512 --output-len 256 --batch-size 64 --output-json hf-generate.json

Needs torch and transformers. Prompts are random token ids (seeded), all of input-len tokens, so
a batch needs no padding; min_new_tokens = max_new_tokens = output-len makes every request
generate exactly output-len tokens, greedy.
"""
import argparse
import contextlib
import datetime
import json
import time

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def build_model(model_dir, dtype, device, attn_implementation):
    config = AutoConfig.from_pretrained(model_dir)
    # Built directly on the device: initialising 8B parameters on the CPU first takes minutes.
    # (torch.device is a context manager from torch 2.0; older ones build on the CPU.)
    with device if hasattr(device, "__enter__") else contextlib.nullcontext():
        try:  # transformers >= 4.56 names it dtype (and 5.x only that)
            model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=attn_implementation)
        except TypeError:
            model = AutoModelForCausalLM.from_config(config, torch_dtype=dtype, attn_implementation=attn_implementation)
    return model.to(device=device, dtype=dtype).eval(), config


def generate_batch(model, prompts, output_len, pad_token_id):
    return model.generate(
        input_ids=prompts,
        attention_mask=torch.ones_like(prompts),
        max_new_tokens=output_len,
        min_new_tokens=output_len,
        do_sample=False,
        pad_token_id=pad_token_id,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a model folder with config.json (weights are not read)")
    parser.add_argument("--num-prompts", type=int, default=1000)
    parser.add_argument("--input-len", type=int, default=512)
    parser.add_argument("--output-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64, help="requests per static batch")
    parser.add_argument("--dtype", default="bfloat16", choices=list(DTYPES))
    parser.add_argument("--attn-implementation", default="sdpa", help="sdpa (default), eager, flash_attention_2, ...")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (a smoke test of this script)")
    parser.add_argument("--output-json")
    args = parser.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("torch sees no CUDA device (use --device cpu only to try the script)")
    torch.manual_seed(args.seed)
    model, config = build_model(args.model, DTYPES[args.dtype], device, args.attn_implementation)
    generator = torch.Generator().manual_seed(args.seed)
    prompts = torch.randint(0, config.vocab_size, (args.num_prompts, args.input_len), generator=generator)
    pad_token_id = getattr(config, "pad_token_id", None)
    if pad_token_id is None:
        pad_token_id = 0

    # One small batch first: CUDA context, cuBLAS handles and kernels are loaded outside the timing.
    generate_batch(model, prompts[:1, : min(16, args.input_len)].to(device), 2, pad_token_id)
    if device.type == "cuda":
        torch.cuda.synchronize(device)

    output_tokens = 0
    started = time.perf_counter()
    with torch.inference_mode():
        for first in range(0, args.num_prompts, args.batch_size):
            batch = prompts[first : first + args.batch_size].to(device)
            out = generate_batch(model, batch, args.output_len, pad_token_id)
            output_tokens += (out.shape[1] - batch.shape[1]) * batch.shape[0]
            print(f"batch {first // args.batch_size + 1}/{-(-args.num_prompts // args.batch_size)}: "
                  f"{time.perf_counter() - started:.1f} s", flush=True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - started

    prompt_tokens = args.num_prompts * args.input_len
    results = {
        "numRequests": args.num_prompts,
        "promptTokens": prompt_tokens,
        "outputTokens": output_tokens,
        "elapsedSeconds": elapsed,
        "requestsPerSecond": args.num_prompts / elapsed,
        "totalTokensPerSecond": (prompt_tokens + output_tokens) / elapsed,
        "outputTokensPerSecond": output_tokens / elapsed,
    }
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"HF generate on {device_name}: {args.num_prompts} requests, batch {args.batch_size}, "
          f"{output_tokens} output tokens in {elapsed:.1f} s: {results['outputTokensPerSecond']:.1f} output tokens/s")
    if args.output_json:
        report = {
            "command": "bench/hf_generate_baseline.py",
            "model": args.model,
            "device": {"backend": "torch", "name": device_name},
            "configuration": {"numPrompts": args.num_prompts, "inputLen": args.input_len, "outputLen": args.output_len,
                              "batchSize": args.batch_size, "dtype": args.dtype, "attnImplementation": args.attn_implementation,
                              "seed": args.seed, "torch": torch.__version__, "transformers": transformers.__version__},
            "results": results,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
        with open(args.output_json, "w") as file:
            json.dump(report, file, indent=2)
            file.write("\n")


if __name__ == "__main__":
    main()
