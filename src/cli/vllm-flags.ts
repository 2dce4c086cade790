// vLLM's options that this engine does not implement: recognized, so that a vLLM command line gets a
// sentence saying so instead of "unrecognized arguments" (or, worse, a value taken for the model).
// A value that asks for nothing (a parallel size of 1, the auto KV-cache dtype) is accepted.

export interface UnsupportedFlag {
  reason: string;
  /** Values that change nothing, accepted. */
  accepts?: (value: string | undefined) => boolean;
}

const one = (value: string | undefined) => value === "1";

export const UNSUPPORTED_VLLM_FLAGS: Record<string, UnsupportedFlag> = {
  "tensor-parallel-size": {
    reason: "this engine runs a model on one device; tensor parallelism is not implemented",
    accepts: one,
  },
  "pipeline-parallel-size": {
    reason: "this engine runs a model on one device; pipeline parallelism is not implemented",
    accepts: one,
  },
  "data-parallel-size": { reason: "data parallelism is not implemented; run one server per device", accepts: one },
  "kv-cache-dtype": {
    reason: "the KV cache takes the model's activation dtype; no other is implemented",
    accepts: (value) => value === "auto",
  },
  "enable-lora": { reason: "LoRA adapters are not implemented" },
  "lora-modules": { reason: "LoRA adapters are not implemented" },
  "max-loras": { reason: "LoRA adapters are not implemented" },
  "speculative-config": { reason: "speculative decoding is not implemented" },
  "cpu-offload-gb": { reason: "offloading weights to host memory is not implemented" },
  "swap-space": { reason: "preempted requests are recomputed; swapping KV blocks to the host is not implemented" },
  "pipeline-parallel": { reason: "this engine runs a model on one device; pipeline parallelism is not implemented" },
  "distributed-executor-backend": { reason: "this engine runs a model on one device, in one process" },
  "limit-mm-per-prompt": { reason: "multimodal inputs are not implemented" },
};
