// A model of tiny shapes for `bench kernels --model DIR` where the real shapes would take hours
// (the CPU backend, the emulated CUDA library): matmuls qkv 512 x 128, o 128 x 256, gate_up
// 640 x 128, down 128 x 320; attention 4 query heads, 2 KV heads of 64. Used by the kernel
// benchmark's tests and by the GPU check's dry run.
export const TINY_KERNEL_MODEL_CONFIG = {
  architectures: ["LlamaForCausalLM"],
  hidden_size: 128,
  intermediate_size: 320,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 64,
  num_hidden_layers: 1,
  vocab_size: 512,
  max_position_embeddings: 4096,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  torch_dtype: "bfloat16",
  tie_word_embeddings: false,
};

/** Quick timing: each figure from a few calls, baselines on small buffers. */
export const QUICK_TIMING_FLAGS = ["--min-time-ms", "1", "--repeats", "1", "--cold-mib", "1", "--copy-mib", "4"];
