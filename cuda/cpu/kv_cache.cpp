// The paged KV cache's data movement: writing new tokens' K/V into their slots, copying blocks
// inside a cache (copy-on-write) and swapping blocks between device and host caches.
#include <cstring>

#include "checks.h"
#include "common.h"
#include "op.h"

namespace {

// Every (pair, plane) block copy; a thread owns whole blocks.
void copy_block_pairs(const vt_context* ctx, char* dst, size_t dst_plane_stride, const char* src,
                      size_t src_plane_stride, int32_t num_planes, size_t block_bytes, const int32_t* pairs,
                      int32_t num_pairs) {
  size_t work = size_t(num_pairs) * num_planes * block_bytes / 4;
#pragma omp parallel for collapse(2) num_threads(vt::threads_for(ctx, work)) schedule(static)
  for (int32_t i = 0; i < num_pairs; i++)
    for (int32_t plane = 0; plane < num_planes; plane++)
      std::memcpy(dst + plane * dst_plane_stride + size_t(pairs[2 * i + 1]) * block_bytes,
                  src + plane * src_plane_stride + size_t(pairs[2 * i]) * block_bytes, block_bytes);
}

}  // namespace

extern "C" {

// Memory-bound; a thread owns whole tokens (all heads of one slot).
vt_status vt_write_kv_cache(vt_context* ctx, const void* k, const void* v, void* k_cache, void* v_cache,
                            const int32_t* slot_mapping, int32_t num_tokens, int32_t num_kv_heads, int32_t head_dim,
                            int32_t row_stride, int32_t block_size, vt_dtype act_dtype, vt_dtype cache_dtype) {
  const char* op = "vt_write_kv_cache";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_act_dtype(op, act_dtype));
  VT_TRY(vt::check_storage_dtype(op, "cache_dtype", cache_dtype));
  VT_TRY(vt::check_write_kv_cache_sizes(op, num_tokens, num_kv_heads, head_dim, block_size));
  VT_TRY(vt::check_write_kv_cache_args(op, k, v, k_cache, v_cache, slot_mapping, num_kv_heads, head_dim, row_stride));
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_write_kv_cache, k, v, k_cache, v_cache, slot_mapping, num_tokens, num_kv_heads,
                         head_dim, row_stride, block_size, act_dtype, cache_dtype);
  const int32_t width = num_kv_heads * head_dim;
  auto* key = static_cast<const float*>(k);
  auto* value = static_cast<const float*>(v);
  vt::with_dtype(cache_dtype, [&](auto C) {
#pragma omp parallel for num_threads(vt::threads_for(ctx, size_t(num_tokens) * width * 2)) schedule(static)
    for (int32_t t = 0; t < num_tokens; t++) {
      int32_t slot = slot_mapping[t];
      if (slot < 0) continue;  // padding
      const float* k_row = key + size_t(t) * row_stride;
      const float* v_row = value + size_t(t) * row_stride;
      size_t base = size_t(slot) * width;
      for (int32_t i = 0; i < width; i++) vt::store(k_cache, C, base + i, k_row[i]);
      for (int32_t i = 0; i < width; i++) vt::store(v_cache, C, base + i, v_row[i]);
    }
  });
  return vt::ok();
}

vt_status vt_copy_blocks(vt_context* ctx, void* cache, int32_t num_planes, size_t plane_stride_bytes,
                         size_t block_bytes, const int32_t* block_pairs, int32_t num_pairs) {
  const char* op = "vt_copy_blocks";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_copy_blocks_args(op, cache, block_pairs, num_planes, num_pairs));
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_copy_blocks, cache, num_planes, plane_stride_bytes, block_bytes, block_pairs,
                         num_pairs);
  // Device memory is host memory here, so the pairs can be checked as a swap's are.
  VT_TRY(vt::check_host_block_pairs(op, block_pairs, num_pairs));
  auto* bytes = static_cast<char*>(cache);
  copy_block_pairs(ctx, bytes, plane_stride_bytes, bytes, plane_stride_bytes, num_planes, block_bytes, block_pairs,
                   num_pairs);
  return vt::ok();
}

vt_status vt_swap_blocks(vt_context* ctx, void* dst, size_t dst_plane_stride_bytes, const void* src,
                         size_t src_plane_stride_bytes, int32_t num_planes, size_t block_bytes,
                         const int32_t* block_pairs, int32_t num_pairs, vt_copy_kind kind) {
  const char* op = "vt_swap_blocks";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_swap_blocks_args(op, dst, src, block_pairs, num_planes, num_pairs, kind));
  VT_TRY(vt::cpu::refuse_while_capturing(ctx, op));  // host copies, as on CUDA
  VT_RUN_ON_STREAM_AND_WAIT(ctx, vt_swap_blocks, dst, dst_plane_stride_bytes, src, src_plane_stride_bytes, num_planes,
                            block_bytes, block_pairs, num_pairs, kind);
  copy_block_pairs(ctx, static_cast<char*>(dst), dst_plane_stride_bytes, static_cast<const char*>(src),
                   src_plane_stride_bytes, num_planes, block_bytes, block_pairs, num_pairs);
  return vt::ok();
}

}  // extern "C"
