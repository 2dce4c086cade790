// The argument checks of vllm_ts.h's contract that both backends make, one function per op (or
// per family of ops with the same arguments; two, _sizes then _args, where one backend checks
// something of its own in between), so the two libraries accept and reject the same calls with
// the same messages.
//
// Each function checks sizes, enum values and pointers. What stays at the call site: the ctx
// check (always first), the dtype checks whose accepted set is the backend's own (activations:
// f32 only on the CPU, check_act_storage on the GPU), and the checks only one backend can or
// must make (index arrays the CPU reads on the host, limits of the GPU's kernels). Where a size
// of zero makes the op a no-op before its pointers are looked at, the function skips the pointer
// checks too, and the call site returns vt::ok() right after it.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "quant.h"
#include "status.h"

namespace vt {

// ---- memory ----------------------------------------------------------------------------------

inline vt_status check_memcpy_args(const char* op, const void* dst, const void* src, size_t bytes, vt_copy_kind kind) {
  VT_REQUIRE(kind == VT_COPY_HOST_TO_DEVICE || kind == VT_COPY_DEVICE_TO_HOST || kind == VT_COPY_DEVICE_TO_DEVICE, op,
             "unknown copy kind " + std::to_string(int(kind)));
  if (bytes > 0) VT_REQUIRE(dst && src, op, "dst or src is NULL");
  return VT_OK;
}

// ---- conversion ------------------------------------------------------------------------------

// A dtype or a quantized weight format.
inline vt_status check_weight_format(const char* op, const char* what, vt_dtype d) {
  if (valid_dtype(d) || quant::is_quantized(d)) return VT_OK;
  return fail(VT_ERR_INVALID_ARGUMENT, std::string(op) + ": unknown " + what + " " + std::to_string(int(d)));
}

// `count` elements of `d` are whole blocks when `d` is quantized.
inline vt_status check_whole_blocks(const char* op, const char* what, vt_dtype d, size_t count) {
  if (!quant::is_quantized(d) || count % size_t(quant::block_elements(d)) == 0) return VT_OK;
  return fail(VT_ERR_INVALID_ARGUMENT, std::string(op) + ": " + what + " " + std::to_string(count) +
                                           " is not a multiple of " + dtype_name(d) + "'s block of " +
                                           std::to_string(quant::block_elements(d)));
}

inline vt_status check_convert_args(const char* op, const void* dst, vt_dtype dst_dtype, const void* src,
                                    vt_dtype src_dtype, size_t count) {
  VT_TRY(check_weight_format(op, "dst_dtype", dst_dtype));
  VT_TRY(check_weight_format(op, "src_dtype", src_dtype));
  VT_REQUIRE(!(quant::is_quantized(dst_dtype) && quant::is_quantized(src_dtype)) || dst_dtype == src_dtype, op,
             "cannot convert between two quantized formats");
  VT_TRY(check_whole_blocks(op, "count", src_dtype, count));
  VT_TRY(check_whole_blocks(op, "count", dst_dtype, count));
  if (count == 0) return VT_OK;
  VT_REQUIRE(dst && src, op, "dst or src is NULL");
  VT_REQUIRE(count <= SIZE_MAX / 4, op, "count is too large");
  return VT_OK;
}

inline vt_status check_fill_uniform_args(const char* op, const void* dst, vt_dtype dtype, size_t count) {
  VT_TRY(check_storage_dtype(op, "dtype", dtype));
  if (count > 0) VT_REQUIRE(dst, op, "dst is NULL");
  return VT_OK;
}

// ---- row ops ---------------------------------------------------------------------------------

inline vt_status check_gather_rows_args(const char* op, const void* dst, const void* src, const int32_t* indices,
                                        int32_t num_rows) {
  VT_REQUIRE(num_rows >= 0, op, "num_rows is negative");
  VT_REQUIRE(dst && src && indices, op, "dst, src or indices is NULL");
  return VT_OK;
}

inline vt_status check_embedding_args(const char* op, const int32_t* token_ids, const void* table, const void* out,
                                      int32_t num_tokens, int32_t vocab_size, int32_t hidden_size) {
  VT_REQUIRE(num_tokens >= 0 && vocab_size >= 0 && hidden_size >= 0, op,
             "negative size (num_tokens " + std::to_string(num_tokens) + ", vocab_size " + std::to_string(vocab_size) +
                 ", hidden_size " + std::to_string(hidden_size) + ")");
  VT_REQUIRE(token_ids && table && out, op, "token_ids, table or out is NULL");
  return VT_OK;
}

inline vt_status check_rms_norm_args(const char* op, const void* input, const void* weight, const void* out,
                                     int32_t num_tokens, int32_t hidden_size) {
  VT_REQUIRE(num_tokens >= 0 && hidden_size > 0, op,
             "need num_tokens >= 0 and hidden_size > 0, got " + std::to_string(num_tokens) + " and " +
                 std::to_string(hidden_size));
  VT_REQUIRE(input && weight && out, op, "input, weight or out is NULL");
  return VT_OK;
}

inline vt_status check_head_rms_norm_args(const char* op, const void* x, const void* weight, int32_t num_tokens,
                                          int32_t num_heads, int32_t head_dim, int32_t row_stride) {
  VT_REQUIRE(num_tokens >= 0 && num_heads >= 0 && head_dim > 0, op,
             "need num_tokens >= 0, num_heads >= 0 and head_dim > 0");
  VT_REQUIRE(int64_t(row_stride) >= int64_t(num_heads) * head_dim, op,
             "row_stride " + std::to_string(row_stride) + " is shorter than num_heads * head_dim");
  VT_REQUIRE(x && weight, op, "x or weight is NULL");
  return VT_OK;
}

// vt_silu_and_mul and vt_gelu_tanh_and_mul: a gated activation over a fused gate_up row.
inline vt_status check_gated_activation_args(const char* op, const void* x, const void* out, int32_t num_tokens,
                                             int32_t d) {
  VT_REQUIRE(num_tokens >= 0 && d >= 0, op,
             "negative size (num_tokens " + std::to_string(num_tokens) + ", d " + std::to_string(d) + ")");
  VT_REQUIRE(x && out, op, "x or out is NULL");
  return VT_OK;
}

inline vt_status check_soft_cap_args(const char* op, const void* x, size_t count, float cap) {
  VT_REQUIRE(cap > 0.0f && cap < INFINITY, op, "cap must be positive and finite, got " + std::to_string(cap));
  if (count > 0) VT_REQUIRE(x, op, "x is NULL");
  return VT_OK;
}

inline vt_status check_matmul_args(const char* op, const void* x, const void* w, const void* out, int32_t m, int32_t n,
                                   int32_t k, vt_dtype weight_dtype) {
  VT_TRY(check_weight_format(op, "weight_dtype", weight_dtype));
  VT_REQUIRE(m >= 0 && n > 0 && k > 0, op,
             "need m >= 0, n > 0 and k > 0, got m " + std::to_string(m) + ", n " + std::to_string(n) + ", k " +
                 std::to_string(k));
  VT_TRY(check_whole_blocks(op, "k", weight_dtype, size_t(k)));
  if (m > 0) VT_REQUIRE(x && w && out, op, "x, w or out is NULL");
  return VT_OK;
}

inline vt_status check_pack_weights_args(const char* op, const void* w, int32_t n, int32_t k, vt_dtype dtype) {
  VT_REQUIRE(quant::is_quantized(dtype), op, "dtype " + std::to_string(int(dtype)) + " is not a quantized format");
  VT_REQUIRE(n > 0 && k > 0, op, "need n > 0 and k > 0, got n " + std::to_string(n) + ", k " + std::to_string(k));
  VT_TRY(check_whole_blocks(op, "k", dtype, size_t(k)));
  VT_REQUIRE(w, op, "w is NULL");
  return VT_OK;
}

// ---- mixture of experts ----------------------------------------------------------------------

constexpr int32_t kMoeMaxExperts = 1024;
constexpr int32_t kMoeMaxTopK = 32;

inline vt_status check_moe_route_args(const char* op, const void* logits, int32_t num_tokens, int32_t num_experts,
                                      int32_t top_k, const int32_t* expert_ids, const float* weights) {
  VT_REQUIRE(num_tokens >= 0, op, "num_tokens is negative");
  VT_REQUIRE(num_experts >= 1 && num_experts <= kMoeMaxExperts, op,
             "num_experts must be 1.." + std::to_string(kMoeMaxExperts) + ", got " + std::to_string(num_experts));
  VT_REQUIRE(top_k >= 1 && top_k <= num_experts && top_k <= kMoeMaxTopK, op,
             "top_k must be 1..min(num_experts, " + std::to_string(kMoeMaxTopK) + "), got " + std::to_string(top_k));
  if (num_tokens > 0) VT_REQUIRE(logits && expert_ids && weights, op, "logits, expert_ids or weights is NULL");
  return VT_OK;
}

inline vt_status check_moe_group_args(const char* op, const int32_t* expert_ids, int32_t num_slots, int32_t num_experts,
                                      const int32_t* sorted_slots, const int32_t* expert_offsets) {
  VT_REQUIRE(num_slots >= 0, op, "num_slots is negative");
  VT_REQUIRE(num_experts >= 1 && num_experts <= kMoeMaxExperts, op,
             "num_experts must be 1.." + std::to_string(kMoeMaxExperts) + ", got " + std::to_string(num_experts));
  VT_REQUIRE(expert_offsets, op, "expert_offsets is NULL");
  if (num_slots > 0) VT_REQUIRE(expert_ids && sorted_slots, op, "expert_ids or sorted_slots is NULL");
  return VT_OK;
}

inline vt_status check_moe_matmul_args(const char* op, const void* x, int32_t slots_per_x_row, const void* w,
                                       const int32_t* sorted_slots, const int32_t* expert_offsets, const void* out,
                                       int32_t num_slots, int32_t num_experts, int32_t n, int32_t k,
                                       vt_dtype weight_dtype) {
  VT_TRY(check_weight_format(op, "weight_dtype", weight_dtype));
  VT_REQUIRE(num_slots >= 0 && n > 0 && k > 0, op,
             "need num_slots >= 0, n > 0 and k > 0, got num_slots " + std::to_string(num_slots) + ", n " +
                 std::to_string(n) + ", k " + std::to_string(k));
  VT_REQUIRE(num_experts >= 1 && num_experts <= kMoeMaxExperts, op,
             "num_experts must be 1.." + std::to_string(kMoeMaxExperts) + ", got " + std::to_string(num_experts));
  VT_REQUIRE(slots_per_x_row >= 1, op, "slots_per_x_row must be >= 1, got " + std::to_string(slots_per_x_row));
  VT_TRY(check_whole_blocks(op, "k", weight_dtype, size_t(k)));
  VT_REQUIRE(expert_offsets, op, "expert_offsets is NULL");
  if (num_slots > 0) VT_REQUIRE(x && w && sorted_slots && out, op, "x, w, sorted_slots or out is NULL");
  return VT_OK;
}

inline vt_status check_moe_combine_args(const char* op, const void* x, const float* weights, const void* shared,
                                        const void* shared_gate, const void* out, int32_t num_tokens, int32_t top_k,
                                        int32_t d) {
  VT_REQUIRE(num_tokens >= 0 && d >= 0, op,
             "negative size (num_tokens " + std::to_string(num_tokens) + ", d " + std::to_string(d) + ")");
  VT_REQUIRE(top_k >= 1 && top_k <= kMoeMaxTopK, op,
             "top_k must be 1.." + std::to_string(kMoeMaxTopK) + ", got " + std::to_string(top_k));
  VT_REQUIRE((shared == nullptr) == (shared_gate == nullptr), op,
             "shared and shared_gate must both be given or both be NULL");
  if (num_tokens > 0 && d > 0) VT_REQUIRE(x && weights && out, op, "x, weights or out is NULL");
  return VT_OK;
}

// ---- rotary embedding ------------------------------------------------------------------------

inline vt_status check_rope_cos_sin_cache_args(const char* op, const float* cos_sin, int32_t max_position,
                                               int32_t rotary_dim, float theta, vt_rope_scaling_type scaling_type,
                                               float factor, float low_freq_factor, float high_freq_factor,
                                               int32_t original_max_position) {
  VT_REQUIRE(max_position >= 0, op, "max_position is negative");
  VT_REQUIRE(rotary_dim > 0 && rotary_dim % 2 == 0, op,
             "rotary_dim must be positive and even, got " + std::to_string(rotary_dim));
  VT_REQUIRE(theta > 0.0f, op, "theta must be positive");
  VT_REQUIRE(scaling_type == VT_ROPE_SCALING_NONE || scaling_type == VT_ROPE_SCALING_LLAMA3 ||
                 scaling_type == VT_ROPE_SCALING_LINEAR,
             op, "unknown scaling_type " + std::to_string(int(scaling_type)));
  if (scaling_type == VT_ROPE_SCALING_LINEAR) VT_REQUIRE(factor > 0.0f, op, "linear scaling needs factor > 0");
  if (scaling_type == VT_ROPE_SCALING_LLAMA3)
    VT_REQUIRE(
        factor > 0.0f && low_freq_factor > 0.0f && high_freq_factor > low_freq_factor && original_max_position > 0, op,
        "llama3 scaling needs factor > 0, 0 < low_freq_factor < high_freq_factor and "
        "original_max_position > 0");
  VT_REQUIRE(cos_sin, op, "cos_sin is NULL");
  return VT_OK;
}

// The positions are device memory: reading them is the CPU backend's own check.
inline vt_status check_rotary_embedding_args(const char* op, const int32_t* positions, const void* q, const void* k,
                                             const float* cos_sin, int32_t num_tokens, int32_t num_q_heads,
                                             int32_t num_kv_heads, int32_t head_dim, int32_t rotary_dim,
                                             int32_t row_stride) {
  VT_REQUIRE(num_tokens >= 0 && num_q_heads >= 0 && num_kv_heads >= 0 && head_dim > 0, op,
             "need num_tokens, num_q_heads, num_kv_heads >= 0 and head_dim > 0");
  VT_REQUIRE(rotary_dim > 0 && rotary_dim % 2 == 0 && rotary_dim <= head_dim, op,
             "rotary_dim must be even and in (0, head_dim], got " + std::to_string(rotary_dim));
  VT_REQUIRE(int64_t(row_stride) >= int64_t(num_q_heads > num_kv_heads ? num_q_heads : num_kv_heads) * head_dim, op,
             "row_stride " + std::to_string(row_stride) + " is shorter than the heads it holds");
  VT_REQUIRE(positions && q && k && cos_sin, op, "positions, q, k or cos_sin is NULL");
  return VT_OK;
}

// ---- KV cache --------------------------------------------------------------------------------

// vt_write_kv_cache checks its sizes, then (on the GPU) that a token's K and V fit the kernel's
// int32 indexing, then the rest. The slot mapping is device memory: the CPU backend reads it as
// it writes, the GPU's kernel skips a negative slot as padding.
inline vt_status check_write_kv_cache_sizes(const char* op, int32_t num_tokens, int32_t num_kv_heads, int32_t head_dim,
                                            int32_t block_size) {
  VT_REQUIRE(num_tokens >= 0 && num_kv_heads > 0 && head_dim > 0 && block_size > 0, op,
             "need num_tokens >= 0 and num_kv_heads, head_dim, block_size > 0");
  return VT_OK;
}

inline vt_status check_write_kv_cache_args(const char* op, const void* k, const void* v, const void* k_cache,
                                           const void* v_cache, const int32_t* slot_mapping, int32_t num_kv_heads,
                                           int32_t head_dim, int32_t row_stride) {
  VT_REQUIRE(int64_t(row_stride) >= int64_t(num_kv_heads) * head_dim, op,
             "row_stride " + std::to_string(row_stride) + " is shorter than num_kv_heads * head_dim");
  VT_REQUIRE(k && v && k_cache && v_cache && slot_mapping, op, "k, v, k_cache, v_cache or slot_mapping is NULL");
  return VT_OK;
}

// Block pairs read on the host must name real blocks; the ids' upper bound is the caller's (the
// cache size is not passed), but a negative id is always a bug and would copy from or to before
// the cache.
inline vt_status check_host_block_pairs(const char* op, const int32_t* pairs, int32_t num_pairs) {
  for (int32_t i = 0; i < 2 * num_pairs; i++)
    VT_REQUIRE(pairs[i] >= 0, op, "block_pairs[" + std::to_string(i) + "] is negative");
  return VT_OK;
}

// The pairs are device memory: only the CPU backend can read them here (check_host_block_pairs).
inline vt_status check_copy_blocks_args(const char* op, const void* cache, const int32_t* block_pairs,
                                        int32_t num_planes, int32_t num_pairs) {
  VT_REQUIRE(num_planes >= 0 && num_pairs >= 0, op, "num_planes or num_pairs is negative");
  VT_REQUIRE(cache && block_pairs, op, "cache or block_pairs is NULL");
  return VT_OK;
}

// The pairs of a swap are host memory on every backend, so their ids are checked here.
inline vt_status check_swap_blocks_args(const char* op, const void* dst, const void* src, const int32_t* block_pairs,
                                        int32_t num_planes, int32_t num_pairs, vt_copy_kind kind) {
  VT_REQUIRE(kind == VT_COPY_DEVICE_TO_HOST || kind == VT_COPY_HOST_TO_DEVICE, op,
             "kind must be VT_COPY_DEVICE_TO_HOST or VT_COPY_HOST_TO_DEVICE, got " + std::to_string(int(kind)));
  VT_REQUIRE(num_planes >= 0 && num_pairs >= 0, op, "num_planes or num_pairs is negative");
  VT_REQUIRE(dst && src && block_pairs, op, "dst, src or block_pairs is NULL");
  return check_host_block_pairs(op, block_pairs, num_pairs);
}

// ---- attention -------------------------------------------------------------------------------

// vt_paged_attention checks the batch's sizes, then (on the GPU, whose launch plan is sized from
// them) max_query_len and max_seq_len, then the rest. The index arrays are device memory: the
// CPU backend checks their contents on the host after this, the GPU what its kernels support.
inline vt_status check_paged_attention_sizes(const char* op, int32_t num_seqs, int32_t num_tokens,
                                             int32_t max_blocks_per_seq) {
  VT_REQUIRE(num_seqs >= 0 && num_tokens >= 0 && max_blocks_per_seq >= 0, op,
             "num_seqs, num_tokens and max_blocks_per_seq must be >= 0");
  return VT_OK;
}

inline vt_status check_paged_attention_args(const char* op, const void* out, const void* q, const void* k_cache,
                                            const void* v_cache, const int32_t* block_tables, const int32_t* seq_lens,
                                            const int32_t* query_start_loc, int32_t num_q_heads, int32_t num_kv_heads,
                                            int32_t head_dim, int32_t q_row_stride, int32_t block_size,
                                            float soft_cap) {
  VT_REQUIRE(soft_cap >= 0.0f && soft_cap < INFINITY, op,
             "soft_cap must be 0 (off) or positive and finite, got " + std::to_string(soft_cap));
  VT_REQUIRE(num_q_heads > 0 && num_kv_heads > 0 && head_dim > 0 && block_size > 0, op,
             "num_q_heads, num_kv_heads, head_dim and block_size must be positive");
  VT_REQUIRE(num_q_heads % num_kv_heads == 0, op,
             "num_q_heads (" + std::to_string(num_q_heads) + ") is not a multiple of num_kv_heads (" +
                 std::to_string(num_kv_heads) + ")");
  VT_REQUIRE(int64_t(q_row_stride) >= int64_t(num_q_heads) * head_dim, op,
             "q_row_stride " + std::to_string(q_row_stride) + " is shorter than num_q_heads * head_dim");
  VT_REQUIRE(out && q && k_cache && v_cache && block_tables && seq_lens && query_start_loc, op,
             "out, q, k_cache, v_cache, block_tables, seq_lens or query_start_loc is NULL");
  VT_REQUIRE(out != q, op, "out must not alias q");
  return VT_OK;
}

// ---- sampling --------------------------------------------------------------------------------

// Rows of logits in, one result per row (vt_argmax, vt_log_softmax; vt_sample adds its own).
inline vt_status check_logits_args(const char* op, const void* logits, const void* out, int32_t num_rows,
                                   int32_t vocab_size) {
  VT_REQUIRE(
      num_rows >= 0 && vocab_size > 0, op,
      "need num_rows >= 0 and vocab_size > 0, got " + std::to_string(num_rows) + " and " + std::to_string(vocab_size));
  VT_REQUIRE(logits && out, op, "logits or out is NULL");
  return VT_OK;
}

inline vt_status check_sample_args(const char* op, const void* logits, const int32_t* out, int32_t num_rows,
                                   int32_t vocab_size, const float* temperatures, const int32_t* top_k,
                                   const float* top_p, const float* min_p, const float* uniforms) {
  VT_TRY(check_logits_args(op, logits, out, num_rows, vocab_size));
  VT_REQUIRE(temperatures && top_k && top_p && min_p && uniforms, op,
             "temperatures, top_k, top_p, min_p or uniforms is NULL");
  return VT_OK;
}

// The row indices are device memory: the CPU backend checks their range on the host after this,
// the GPU's kernel skips a mask row whose index is outside it.
inline vt_status check_apply_token_bitmask_args(const char* op, const void* logits, int32_t num_rows,
                                                int32_t vocab_size, const int32_t* bitmask, int32_t words_per_row,
                                                const int32_t* row_indices, int32_t num_masked_rows) {
  VT_REQUIRE(num_rows >= 0 && vocab_size > 0 && num_masked_rows >= 0, op,
             "need num_rows >= 0, vocab_size > 0 and num_masked_rows >= 0, got " + std::to_string(num_rows) + ", " +
                 std::to_string(vocab_size) + " and " + std::to_string(num_masked_rows));
  const int64_t words_needed = (int64_t(vocab_size) + 31) / 32;
  VT_REQUIRE(words_per_row >= words_needed, op,
             "words_per_row " + std::to_string(words_per_row) +
                 " is shorter than ceil(vocab_size / 32) = " + std::to_string(words_needed));
  if (num_masked_rows == 0) return VT_OK;
  VT_REQUIRE(logits && bitmask && row_indices, op, "logits, bitmask or row_indices is NULL");
  return VT_OK;
}

}  // namespace vt
