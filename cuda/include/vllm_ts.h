/*
 * vllm_ts.h — the whole C ABI of vllm-ts.
 *
 * Two libraries export exactly these symbols: libvllm_ts_cuda.so (nvcc, the .cu files of cuda/) and
 * libvllm_ts_cpu.so (g++, cuda/cpu/). The TypeScript side loads one of them through bun:ffi from
 * a single symbol table, which the build generates from this header (src/backend/abi-header.ts), so
 * anything added here must be added to both libraries.
 *
 * Conventions (they hold for every function below):
 *  - Every function returns a vt_status; on failure vt_last_error() returns a message for the
 *    calling thread. Nothing here prints or exits.
 *  - "Device pointer" means memory returned by vt_malloc on the same context. On the CPU backend
 *    device memory is host memory, but callers must not rely on that: they move data with
 *    vt_memcpy so the same code drives the GPU.
 *  - Ops are enqueued on the context's stream and may run asynchronously; results are visible to
 *    the host after vt_memcpy(..., VT_COPY_DEVICE_TO_HOST) (which synchronizes) or
 *    vt_synchronize. Index arrays (token ids, positions, slot mapping, block tables, ...) are
 *    device pointers too, so a step can be captured as a CUDA graph.
 *  - Matrices are row-major. "act" tensors (activations) use the op's act_dtype; "weight" tensors
 *    use its weight_dtype. A backend returns VT_ERR_UNSUPPORTED for a dtype combination it does
 *    not implement (the CPU backend computes activations in f32 only and accepts f32/f16/bf16
 *    weights and KV cache; the CUDA backend uses act_dtype == weight_dtype).
 *  - Sizes are int32 element counts unless a name ends in _bytes (size_t).
 *
 * KV-cache layout: one K and one V tensor per layer, each
 *     [num_blocks, block_size, num_kv_heads, head_dim]   (cache_dtype)
 * A token's physical slot is block_id * block_size + offset_in_block.
 */
#ifndef VLLM_TS_H
#define VLLM_TS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VT_ABI_VERSION 10

typedef enum vt_status {
  VT_OK = 0,
  VT_ERR_INVALID_ARGUMENT = 1, /* a null pointer, a negative size, an unknown enum value */
  VT_ERR_OUT_OF_MEMORY = 2,    /* allocation failed */
  VT_ERR_UNSUPPORTED = 3,      /* valid, but not implemented by this backend (dtype, head_dim) */
  VT_ERR_DEVICE = 4            /* the device or its runtime reported an error */
} vt_status;

/*
 * Element types. From VT_Q8_0 on, llama.cpp's block-quantized weight formats (GGUF's types of the
 * same names): a row of k weights is k / 32 (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) or k / 256 (the
 * K-quants) blocks of 34, 18, 20, 22, 24, 144, 176 or 210 bytes, laid out as cuda/shared/quant.h
 * defines. They are accepted only where an op says so (vt_convert, and vt_matmul's weight_dtype),
 * with k a multiple of the block.
 */
typedef enum vt_dtype {
  VT_F32 = 0,
  VT_F16 = 1,
  VT_BF16 = 2,
  VT_Q8_0 = 3,
  VT_Q4_0 = 4,
  VT_Q4_K = 5,
  VT_Q5_K = 6,
  VT_Q6_K = 7,
  VT_Q4_1 = 8,
  VT_Q5_0 = 9,
  VT_Q5_1 = 10
} vt_dtype;

typedef enum vt_copy_kind {
  VT_COPY_HOST_TO_DEVICE = 0,
  VT_COPY_DEVICE_TO_HOST = 1,
  VT_COPY_DEVICE_TO_DEVICE = 2
} vt_copy_kind;

/* Opaque: a device, its stream and the backend's scratch state. */
typedef struct vt_context vt_context;

/* Opaque: a recorded sequence of ops that can be replayed (a CUDA graph). */
typedef struct vt_graph vt_graph;

/* RoPE frequency scaling, as in a Hugging Face config's "rope_scaling". */
typedef enum vt_rope_scaling_type {
  VT_ROPE_SCALING_NONE = 0,
  VT_ROPE_SCALING_LLAMA3 = 1, /* Llama 3.1: factor, low/high_freq_factor, original_max_position */
  VT_ROPE_SCALING_LINEAR = 2  /* position interpolation: every inv_freq divided by factor */
} vt_rope_scaling_type;

/* ------------------------------------------------------------------------------------------ */
/* Library, context, memory                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* The last error message of the calling thread ("" when none). Valid until the next call. */
const char* vt_last_error(void);

/* VT_ABI_VERSION of the library, so a stale library is detected at load. */
int32_t vt_abi_version(void);

/* "cpu" or "cuda". */
const char* vt_backend_name(void);

/* Number of devices this backend can use (0 when the CUDA driver finds no GPU, with CUDA's
 * reason in vt_last_error; 1 for CPU). */
vt_status vt_device_count(int32_t* out_count);

/*
 * Create a context on device `device_index` (ignored by the CPU backend).
 *   num_threads: CPU backend threads (the caller and its pinned workers); 0 = one per physical
 *   core. Ignored by CUDA.
 *   out: receives the context.
 */
vt_status vt_context_create(int32_t device_index, int32_t num_threads, vt_context** out);
vt_status vt_context_destroy(vt_context* ctx);

/*
 * Batch-invariant numerics (vLLM's VLLM_BATCH_INVARIANT): when enabled, every row of every op's
 * output is computed in the same order of operations whatever the number of rows in the call, so
 * a sequence's logits are bit-identical whether its tokens run one per step or many per step (a
 * request recomputed after preemption samples what it sampled before). Costs prefill speed.
 * CUDA returns VT_ERR_UNSUPPORTED.
 */
vt_status vt_context_set_batch_invariant(vt_context* ctx, int32_t enabled);

/*
 * Asynchronous ops on the CPU backend: with enabled, the context's ops run on a thread of its own,
 * in the order they were called (a stream, as on CUDA). An op or vt_graph_launch checks its
 * arguments and returns at once. The calls that copy host memory or free, repack or reconfigure
 * what ops use (vt_memcpy to or from the host, vt_swap_blocks, vt_pack_weights, vt_free,
 * vt_free_host, vt_synchronize, vt_graph_begin_capture, vt_graph_destroy, the vt_context_set_*)
 * wait for the queued ops first and return the first failure among them. Disabled (the default),
 * every op has run when it returns, on the calling thread and the workers. CUDA ops are always
 * asynchronous: enabled changes nothing there.
 */
vt_status vt_context_set_async(vt_context* ctx, int32_t enabled);

/* Block until every op enqueued on ctx has finished. */
vt_status vt_synchronize(vt_context* ctx);

/*
 * Device memory figures in bytes: free_bytes is what an allocation may still take (CPU: the
 * host's available memory), total_bytes the device's size. Either pointer may be NULL.
 */
vt_status vt_memory_info(vt_context* ctx, size_t* free_bytes, size_t* total_bytes);

/* A short human-readable name of the device ("NVIDIA H100 80GB HBM3", "AMD EPYC (2 threads)"). */
vt_status vt_device_name(vt_context* ctx, char* buffer, size_t buffer_bytes);

/* Allocate `bytes` of device memory, 64-byte aligned (256 on CUDA). *out is NULL on failure. */
vt_status vt_malloc(vt_context* ctx, size_t bytes, void** out);
vt_status vt_free(vt_context* ctx, void* ptr);

/* Page-locked host memory for fast swaps (plain aligned host memory on the CPU backend). */
vt_status vt_malloc_host(vt_context* ctx, size_t bytes, void** out);
vt_status vt_free_host(vt_context* ctx, void* ptr);

/* Copy `bytes`. DEVICE_TO_HOST waits for the stream so the host sees finished results. */
vt_status vt_memcpy(vt_context* ctx, void* dst, const void* src, size_t bytes, vt_copy_kind kind);

/* Set `bytes` bytes of device memory to `value`. */
vt_status vt_memset(vt_context* ctx, void* ptr, int32_t value, size_t bytes);

/*
 * Convert `count` elements between dtypes on the device (f32 <-> f16 <-> bf16; same dtype is a
 * copy). Rounds to nearest even. A quantized src is dequantized, a quantized dst quantized
 * (block by block, quant.h's quantizers), from or to any unquantized dtype; count must then be a
 * multiple of the quantized format's block.
 */
vt_status vt_convert(vt_context* ctx, void* dst, vt_dtype dst_dtype, const void* src, vt_dtype src_dtype, size_t count);

/*
 * Fill `count` elements with deterministic uniform values in [-scale, scale): element i gets
 *   h = fmix32(fmix32(i_lo ^ seed) + i_hi * 0x9E3779B9 + 0x85EBCA6B)   (murmur3 finalizer;
 *       i_lo/i_hi are the low/high 32 bits of i)
 *   value = ((h >> 8) * 2^-24 * 2 - 1) * scale
 * rounded to dtype. Used for random-weight models (--load-format dummy), so the same seed gives
 * the same weights on every backend and in the TypeScript reference.
 */
vt_status vt_fill_uniform(vt_context* ctx, void* dst, vt_dtype dtype, size_t count, uint32_t seed, float scale);

/* ------------------------------------------------------------------------------------------ */
/* Model layers                                                                                */
/* ------------------------------------------------------------------------------------------ */

/*
 * out[t, :] = table[token_ids[t], :] * scale   (the product in f32, rounded once to act_dtype)
 *   token_ids: device int32 [num_tokens]; an id outside [0, vocab_size) gives a zero row.
 *   table: weight [vocab_size, hidden_size]; out: act [num_tokens, hidden_size].
 *   scale: 1 for most models; Gemma's sqrt(hidden_size), rounded to act_dtype by the caller.
 */
vt_status vt_embedding(vt_context* ctx, const int32_t* token_ids, int32_t num_tokens, const void* table,
                       int32_t vocab_size, int32_t hidden_size, float scale, void* out, vt_dtype weight_dtype,
                       vt_dtype act_dtype);

/*
 * Fused residual add and RMSNorm over rows of `hidden_size`:
 *   if residual != NULL: residual = input + residual; out = rmsnorm(residual) * weight
 *   else:                out = rmsnorm(input) * weight
 *   rmsnorm(x) = x / sqrt(mean(x^2) + eps)   (accumulated in f32)
 *   input, residual, out: act [num_tokens, hidden_size]; out may alias input.
 *   weight: weight [hidden_size].
 */
vt_status vt_rms_norm(vt_context* ctx, const void* input, void* residual, const void* weight, void* out,
                      int32_t num_tokens, int32_t hidden_size, float eps, vt_dtype act_dtype, vt_dtype weight_dtype);

/*
 * Per-head RMSNorm in place (Qwen3's q_norm / k_norm): for each token t and head h,
 *   x[t * row_stride + h * head_dim + (0..head_dim)] = rmsnorm(that slice) * weight
 *   x: act, row_stride >= num_heads * head_dim elements; weight: weight [head_dim].
 */
vt_status vt_head_rms_norm(vt_context* ctx, void* x, const void* weight, int32_t num_tokens, int32_t num_heads,
                           int32_t head_dim, int32_t row_stride, float eps, vt_dtype act_dtype, vt_dtype weight_dtype);

/*
 * Precompute the rotary table: cos_sin[p, i] = cos(p * inv_freq[i]) and
 * cos_sin[p, rotary_dim/2 + i] = sin(p * inv_freq[i]) for p < max_position, i < rotary_dim/2,
 * with inv_freq[i] = theta^(-2i / rotary_dim), adjusted by `scaling_type`:
 *   VT_ROPE_SCALING_LLAMA3: wavelen = 2*pi/inv_freq; with low_wavelen = original_max / low_freq
 *   and high_wavelen = original_max / high_freq: wavelen < high_wavelen keeps inv_freq,
 *   wavelen > low_wavelen divides it by factor, between them it blends linearly with
 *   smooth = (original_max / wavelen - low_freq) / (high_freq - low_freq):
 *   inv_freq = (1 - smooth) * inv_freq / factor + smooth * inv_freq.
 *   VT_ROPE_SCALING_LINEAR: inv_freq / factor.
 *   The scaling arguments are ignored for VT_ROPE_SCALING_NONE, and all but factor for LINEAR.
 *   cos_sin: device f32 [max_position, rotary_dim].
 */
vt_status vt_rope_cos_sin_cache(vt_context* ctx, float* cos_sin, int32_t max_position, int32_t rotary_dim, float theta,
                                vt_rope_scaling_type scaling_type, float factor, float low_freq_factor,
                                float high_freq_factor, int32_t original_max_position);

/*
 * Rotary embedding in place, Hugging Face "rotate half" form, on the first rotary_dim dims of
 * every head: for i < rotary_dim/2, with (c, s) = cos_sin[positions[t]] at i:
 *   x1 = x[i], x2 = x[i + rotary_dim/2]
 *   x[i] = x1*c - x2*s;  x[i + rotary_dim/2] = x2*c + x1*s
 *   positions: device int32 [num_tokens]; q: act, num_q_heads heads of head_dim from the start
 *   of each row; k: act, num_kv_heads heads likewise; both rows are row_stride elements apart
 *   (q and k may live in one fused QKV row). cos_sin: from vt_rope_cos_sin_cache.
 */
vt_status vt_rotary_embedding(vt_context* ctx, const int32_t* positions, void* q, void* k, const float* cos_sin,
                              int32_t num_tokens, int32_t num_q_heads, int32_t num_kv_heads, int32_t head_dim,
                              int32_t rotary_dim, int32_t row_stride, vt_dtype act_dtype);

/*
 * out[t, i] = silu(x[t, i]) * x[t, d + i] for i < d   (gate first, then up, as a fused
 * gate_up projection lays them out). x: act [num_tokens, 2d]; out: act [num_tokens, d].
 */
vt_status vt_silu_and_mul(vt_context* ctx, const void* x, void* out, int32_t num_tokens, int32_t d, vt_dtype act_dtype);

/*
 * out[t, i] = gelu_tanh(x[t, i]) * x[t, d + i] for i < d (Gemma's GeGLU, same layout as
 * vt_silu_and_mul), with gelu_tanh(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))), the
 * "gelu_pytorch_tanh" of a Hugging Face config. x: act [num_tokens, 2d]; out: act [num_tokens, d].
 */
vt_status vt_gelu_tanh_and_mul(vt_context* ctx, const void* x, void* out, int32_t num_tokens, int32_t d,
                               vt_dtype act_dtype);

/*
 * Soft-capping in place: x[i] = cap * tanh(x[i] / cap) for i < count (computed in f32), so no
 * value leaves (-cap, cap). Gemma's final_logit_softcapping on the LM head's output.
 *   x: act [count]; cap > 0.
 */
vt_status vt_soft_cap(vt_context* ctx, void* x, size_t count, float cap, vt_dtype act_dtype);

/*
 * out[m, n] = sum_k x[m, k] * w[n, k] + bias[n]     (w in nn.Linear's [out, in] layout)
 *   x: act [m, k]; w: weight [n, k]; bias: weight [n] or NULL; out: act [m, n]. Accumulates in
 *   f32. out must not alias x. weight_dtype may be a quantized format (k a multiple of its
 *   block; rows of w are n rows of blocks, passed through vt_pack_weights); the bias is then in
 *   act_dtype. The CPU library reads x at the weights' precision, as llama.cpp does: rounded to
 *   bf16 for bf16 weights, quantized to int8 per block for quantized ones. The CUDA library
 *   quantizes x to int8 per block for quantized weights when m <= 8 (decode), and needs them to
 *   start aligned to 16 bytes (Q4_K, Q5_K), 4 (Q4_1, Q5_1) or 2 (the others).
 */
vt_status vt_matmul(vt_context* ctx, const void* x, const void* w, const void* bias, void* out, int32_t m, int32_t n,
                    int32_t k, vt_dtype act_dtype, vt_dtype weight_dtype);

/*
 * Prepare quantized weights for vt_matmul, in place: w holds n rows of k values as blocks of
 * `dtype` (k a multiple of its block), as vt_convert or a GGUF file writes them; afterwards they
 * are in the layout this library's vt_matmul reads, for vt_matmul only. Every quantized w goes
 * through this once before its first vt_matmul. The CPU library interleaves the rows 16 at a
 * time (cuda/cpu/interleaved_quant.h); the CUDA library reads the blocks as stored and leaves w
 * unchanged.
 */
vt_status vt_pack_weights(vt_context* ctx, void* w, int32_t n, int32_t k, vt_dtype dtype);

/*
 * dst[i, :] = src[indices[i], :] for rows of row_bytes bytes (e.g. the last token of each
 * sequence before the LM head). indices: device int32 [num_rows].
 */
vt_status vt_gather_rows(vt_context* ctx, void* dst, const void* src, const int32_t* indices, int32_t num_rows,
                         size_t row_bytes);

/* ------------------------------------------------------------------------------------------ */
/* Mixture of experts: route, group, the experts' matmuls, combine                            */
/* ------------------------------------------------------------------------------------------ */

/*
 * Routing: per token, p = softmax(logits[t, :]) over num_experts; its top_k most probable
 * experts (ties: the lower id first), best first, go to expert_ids [num_tokens, top_k] and their
 * p to weights [num_tokens, top_k], divided by the top_k's sum when renormalize != 0
 * (norm_topk_prob). logits: act [num_tokens, num_experts]; expert_ids: device int32; weights:
 * device f32. top_k <= num_experts <= 1024, top_k <= 32.
 */
vt_status vt_moe_route(vt_context* ctx, const void* logits, int32_t num_tokens, int32_t num_experts, int32_t top_k,
                       int32_t renormalize, vt_dtype act_dtype, int32_t* expert_ids, float* weights);

/*
 * Grouping: the num_slots (token, choice) slots, slot s = token * top_k + choice with expert
 * expert_ids[s], sorted by expert (a stable counting sort): expert e owns sorted_slots
 * [expert_offsets[e], expert_offsets[e + 1]), ascending. expert_ids: device int32 [num_slots],
 * each in [0, num_experts); sorted_slots: device int32 [num_slots]; expert_offsets: device int32
 * [num_experts + 1].
 */
vt_status vt_moe_group(vt_context* ctx, const int32_t* expert_ids, int32_t num_slots, int32_t num_experts,
                       int32_t* sorted_slots, int32_t* expert_offsets);

/*
 * The experts' linear layers in one call: for every slot s that expert e owns (vt_moe_group),
 *   out[s, :] = x[s / slots_per_x_row, :] · w[e]^T
 * so x holds either tokens (slots_per_x_row = top_k: each token's row feeds its top_k slots) or
 * slots (1). w: weight [num_experts, n, k], the experts' matrices stacked (a quantized format:
 * each expert's n rows of blocks, passed through vt_pack_weights one expert at a time); x: act
 * [num_slots / slots_per_x_row, k]; out: act [num_slots, n], must not alias x. Each used
 * expert's weights are read once per call however few slots it has.
 */
vt_status vt_moe_matmul(vt_context* ctx, const void* x, int32_t slots_per_x_row, const void* w,
                        const int32_t* sorted_slots, const int32_t* expert_offsets, void* out, int32_t num_slots,
                        int32_t num_experts, int32_t n, int32_t k, vt_dtype act_dtype, vt_dtype weight_dtype);

/*
 * Combining: out[t, :] = sum_j weights[t, j] * x[t * top_k + j, :]
 *                        + sigmoid(shared_gate[t]) * shared[t, :]     (when shared is not NULL)
 * accumulated in f32. The second term is Qwen2-MoE's shared expert: an MLP every token goes
 * through, scaled by a gate of its own. x: act [num_tokens * top_k, d]; weights: device f32
 * [num_tokens, top_k]; shared: act [num_tokens, d] or NULL; shared_gate: act [num_tokens] (one
 * logit per token), NULL exactly when shared is; out: act [num_tokens, d].
 */
vt_status vt_moe_combine(vt_context* ctx, const void* x, const float* weights, const void* shared,
                         const void* shared_gate, void* out, int32_t num_tokens, int32_t top_k, int32_t d,
                         vt_dtype act_dtype);

/* ------------------------------------------------------------------------------------------ */
/* Paged KV cache                                                                              */
/* ------------------------------------------------------------------------------------------ */

/*
 * Write the K and V of new tokens into the paged cache:
 *   k_cache[slot_mapping[t]] = k[t], v_cache[slot_mapping[t]] = v[t]   (num_kv_heads*head_dim)
 *   slot_mapping: device int32 [num_tokens]; a negative slot skips the token (padding).
 *   k, v: act, num_kv_heads * head_dim values at the start of each row, rows row_stride apart.
 *   k_cache, v_cache: cache_dtype [num_blocks, block_size, num_kv_heads, head_dim].
 */
vt_status vt_write_kv_cache(vt_context* ctx, const void* k, const void* v, void* k_cache, void* v_cache,
                            const int32_t* slot_mapping, int32_t num_tokens, int32_t num_kv_heads, int32_t head_dim,
                            int32_t row_stride, int32_t block_size, vt_dtype act_dtype, vt_dtype cache_dtype);

/*
 * Attention over the paged cache for a batch of sequences with variable query lengths (decode
 * = 1 query token, a prefill chunk = many) in one call.
 *   Sequence s owns query rows query_start_loc[s] .. query_start_loc[s+1]-1 (num_tokens rows in
 *   all) and has seq_lens[s] tokens in the cache *including* its new tokens, which must already
 *   be written there (vt_write_kv_cache). Its query token j sits at position
 *   seq_lens[s] - q_len + j and attends causally to cached positions 0..that position (and,
 *   when sliding_window > 0, only to the last sliding_window of them).
 *   Its logical block b lives in physical block block_tables[s * max_blocks_per_seq + b].
 *   GQA: query head h reads KV head h / (num_q_heads / num_kv_heads).
 *   out[t, h, :] = softmax(cap(scale * q[t, h] . K^T)) V, where cap(s) = soft_cap * tanh(s / soft_cap)
 *   when soft_cap > 0 (Gemma 2's attn_logit_softcapping) and cap(s) = s when soft_cap = 0.
 *   q: act, num_q_heads * head_dim values at the start of each row, rows q_row_stride apart.
 *   out: act [num_tokens, num_q_heads * head_dim] (contiguous; must not alias q).
 *   block_tables: device int32 [num_seqs, max_blocks_per_seq]; seq_lens: device int32
 *   [num_seqs]; query_start_loc: device int32 [num_seqs + 1], starting at 0.
 *   max_query_len / max_seq_len: upper bounds over the batch (used to size GPU launches).
 *   A sequence with seq_lens[s] = 0 (a padding row of a replayed graph) sees no key: its rows of
 *   out are zeros.
 */
vt_status vt_paged_attention(vt_context* ctx, void* out, const void* q, const void* k_cache, const void* v_cache,
                             const int32_t* block_tables, const int32_t* seq_lens, const int32_t* query_start_loc,
                             int32_t num_seqs, int32_t num_tokens, int32_t max_query_len, int32_t max_seq_len,
                             int32_t max_blocks_per_seq, int32_t num_q_heads, int32_t num_kv_heads, int32_t head_dim,
                             int32_t q_row_stride, int32_t block_size, float scale, int32_t sliding_window,
                             float soft_cap, vt_dtype act_dtype, vt_dtype cache_dtype);

/*
 * Copy whole blocks inside one cache (copy-on-write of a shared block). The cache is seen as
 * num_planes planes (e.g. layers x {K, V}), each of num_blocks blocks of block_bytes, planes
 * plane_stride_bytes apart. For every pair i and every plane:
 *   block block_pairs[2i+1] = block block_pairs[2i]
 *   block_pairs: device int32 [num_pairs, 2] as (src, dst). The pairs are copied in parallel: no
 *   block may be the destination of one pair and the source or destination of another.
 */
vt_status vt_copy_blocks(vt_context* ctx, void* cache, int32_t num_planes, size_t plane_stride_bytes,
                         size_t block_bytes, const int32_t* block_pairs, int32_t num_pairs);

/*
 * Move whole blocks between a device cache and a host cache (preemption by swapping). Both are
 * seen as num_planes planes of blocks as in vt_copy_blocks, with their own plane strides.
 *   kind: VT_COPY_DEVICE_TO_HOST (src is the device cache) or VT_COPY_HOST_TO_DEVICE.
 *   block_pairs: *host* int32 [num_pairs, 2] as (src block, dst block).
 */
vt_status vt_swap_blocks(vt_context* ctx, void* dst, size_t dst_plane_stride_bytes, const void* src,
                         size_t src_plane_stride_bytes, int32_t num_planes, size_t block_bytes,
                         const int32_t* block_pairs, int32_t num_pairs, vt_copy_kind kind);

/* ------------------------------------------------------------------------------------------ */
/* Sampling helpers                                                                            */
/* ------------------------------------------------------------------------------------------ */

/*
 * out[r] = argmax over logits[r, :vocab_size] (the lowest index among equal maxima).
 *   logits: act [num_rows, vocab_size]; out: device int32 [num_rows].
 */
vt_status vt_argmax(vt_context* ctx, const void* logits, int32_t* out, int32_t num_rows, int32_t vocab_size,
                    vt_dtype act_dtype);

/*
 * out[r, :] = log_softmax(logits[r, :] / temperatures[r]) in f32 (temperatures may be NULL:
 * all 1). A temperature <= 0 is treated as 1.
 *   logits: act [num_rows, vocab_size]; temperatures: device f32 [num_rows] or NULL;
 *   out: device f32 [num_rows, vocab_size].
 */
vt_status vt_log_softmax(vt_context* ctx, const void* logits, const float* temperatures, float* out, int32_t num_rows,
                         int32_t vocab_size, vt_dtype act_dtype);

/*
 * Draw one token per row on the device, so only token ids come back to the host. Row r samples
 * from softmax(logits[r] / temperatures[r]) restricted to the tokens every filter keeps, applied
 * in vLLM's order on the tempered probabilities p:
 *   min_p[r] > 0:  keep p >= min_p[r] * max(p);
 *   top_k[r] > 0:  keep p >= the top_k[r]-th largest p (tokens tied with it are kept too);
 *   top_p[r] < 1:  renormalize over the survivors, then keep p >= t for the largest t whose kept
 *                  mass still reaches top_p[r] (the smallest head of the sorted distribution).
 * The draw is inverse-CDF in vocabulary order: the first kept token whose running kept mass
 * exceeds uniforms[r] * (total kept mass); uniforms come from the request's own generator, so a
 * seeded request draws the same whatever its batch. temperatures[r] <= 0 (or NaN) means greedy:
 * the argmax, as vt_argmax; so does a row whose largest logit is not finite. Edge cases: a NaN
 * logit weighs 0; min_p > 1 or top_p <= 0 keep only the most likely token(s); when rounding
 * leaves the running mass short of the target, the last kept token of non-zero weight is drawn.
 *   logits: act [num_rows, vocab_size]; temperatures, top_p, min_p, uniforms: device f32
 *   [num_rows]; top_k: device int32 [num_rows] (0 = off); out: device int32 [num_rows].
 */
vt_status vt_sample(vt_context* ctx, const void* logits, int32_t num_rows, int32_t vocab_size, vt_dtype act_dtype,
                    const float* temperatures, const int32_t* top_k, const float* top_p, const float* min_p,
                    const float* uniforms, int32_t* out);

/*
 * Grammar-constrained decoding (structured outputs; xgrammar's apply_token_bitmask_inplace), in
 * place: for each i < num_masked_rows, row r = row_indices[i] of logits keeps token t when bit
 * t % 32 (least significant first) of bitmask[i, t / 32] is 1; every other logit of row r becomes
 * -infinity in act_dtype. Bits for t >= vocab_size are ignored; rows not listed are untouched.
 * Only the disallowed entries are written, so a row listed more than once gets the AND of its
 * masks (masking is idempotent). num_masked_rows == 0 is a no-op.
 *   logits: act [num_rows, vocab_size].
 *   bitmask: device int32 [num_masked_rows, words_per_row], words_per_row >= ceil(vocab_size / 32)
 *   (xgrammar's mask is wider when the tokenizer pads its vocabulary).
 *   row_indices: device int32 [num_masked_rows], each in [0, num_rows). The CPU backend rejects
 *   an index outside that range; the CUDA backend, which cannot read device memory without a
 *   synchronization, skips its mask row.
 */
vt_status vt_apply_token_bitmask(vt_context* ctx, void* logits, int32_t num_rows, int32_t vocab_size,
                                 vt_dtype act_dtype, const int32_t* bitmask, int32_t words_per_row,
                                 const int32_t* row_indices, int32_t num_masked_rows);

/* ------------------------------------------------------------------------------------------ */
/* Graphs                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/*
 * Record instead of run: every op enqueued on ctx between begin and end is captured into a
 * graph (a CUDA graph on the CUDA backend, the checked calls themselves on the CPU), which
 * vt_graph_launch replays with the same arguments: the same device pointers, whose contents may
 * change between launches. Between begin and end only ops may be called (no vt_malloc/vt_free,
 * no copies to or from the host, no vt_synchronize, no vt_pack_weights); an op's argument
 * errors are reported when it is captured.
 */
vt_status vt_graph_begin_capture(vt_context* ctx);
vt_status vt_graph_end_capture(vt_context* ctx, vt_graph** out);
vt_status vt_graph_launch(vt_context* ctx, vt_graph* graph);
vt_status vt_graph_destroy(vt_context* ctx, vt_graph* graph);

#ifdef __cplusplus
}
#endif

#endif /* VLLM_TS_H */
