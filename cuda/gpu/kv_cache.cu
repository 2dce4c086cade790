// The paged KV cache's data movement: writing new tokens' K/V into their slots, copying blocks
// inside a cache (copy-on-write) and swapping blocks between device and host caches.
//
// All three are memory bound copies.
//  - vt_write_kv_cache: a block owns a token (a grid-stride loop over tokens), its threads
//    stride over the token's K row then its V row in Packs of 8 elements, converting from the
//    activation to the cache dtype on the way (16-byte vector loads and stores).
//  - vt_copy_blocks: block pairs live on the device (the step that builds them may be a captured
//    graph), so one kernel does every (pair, plane): grid x = pair, y = plane, each block copying
//    one cache block in the widest unit its size and strides allow.
//  - vt_swap_blocks: host <-> device copies belong to the copy engines, not to kernels: one
//    cudaMemcpy2DAsync per run of consecutive block pairs moves that run in every plane at once
//    (planes are the rows of the 2-D copy), all on the context's stream.
#include "checks.h"
#include "vec.cuh"

namespace vt::gpu {
namespace {

constexpr int kMaxThreads = 256;
constexpr int kVec = 8;
constexpr unsigned kMaxGridY = 65535;
// The largest pitch a 2-D copy takes (cudaDevAttrMaxPitch of every current GPU); larger plane
// strides are copied plane by plane.
constexpr size_t kMaxPitch = 2147483647u;

template <class A, class C>
__global__ void write_kv_cache_kernel(const A* k, const A* v, C* k_cache, C* v_cache, const int32_t* slot_mapping,
                                      int32_t num_tokens, int32_t width, int32_t row_stride, bool vector) {
  for (int32_t t = blockIdx.x; t < num_tokens; t += gridDim.x) {
    const int32_t slot = slot_mapping[t];
    if (slot < 0) continue;  // padding
    const A* k_row = k + size_t(t) * row_stride;
    const A* v_row = v + size_t(t) * row_stride;
    C* k_dst = k_cache + size_t(slot) * width;
    C* v_dst = v_cache + size_t(slot) * width;
    if (vector) {
      const int32_t n = width / kVec;  // vectors per row; items [0, n) are K, [n, 2n) are V
      for (int32_t j = threadIdx.x; j < 2 * n; j += blockDim.x) {
        const bool is_v = j >= n;
        const int32_t i = (is_v ? j - n : j) * kVec;
        float values[kVec];
        load_floats<kVec>((is_v ? v_row : k_row) + i, values);
        store_floats<kVec>((is_v ? v_dst : k_dst) + i, values);
      }
    } else {
      for (int32_t j = threadIdx.x; j < 2 * width; j += blockDim.x) {
        const bool is_v = j >= width;
        const int32_t i = is_v ? j - width : j;
        (is_v ? v_dst : k_dst)[i] = from_float<C>(to_float((is_v ? v_row : k_row)[i]));
      }
    }
  }
}

template <class U>
__global__ void copy_blocks_kernel(char* cache, int32_t num_planes, size_t plane_stride_bytes, size_t block_bytes,
                                   const int32_t* block_pairs) {
  const int32_t src_block = block_pairs[2 * size_t(blockIdx.x)];
  const int32_t dst_block = block_pairs[2 * size_t(blockIdx.x) + 1];
  // Ids live on the device, so a negative one cannot be rejected on the host without a
  // synchronization; the pair is skipped instead of writing outside the cache.
  if (src_block < 0 || dst_block < 0) return;
  const size_t units = block_bytes / sizeof(U);
  for (int32_t plane = blockIdx.y; plane < num_planes; plane += gridDim.y) {
    char* base = cache + size_t(plane) * plane_stride_bytes;
    const U* from = reinterpret_cast<const U*>(base + size_t(src_block) * block_bytes);
    U* to = reinterpret_cast<U*>(base + size_t(dst_block) * block_bytes);
    VT_CHECK_ALIGNED(from, sizeof(U));
    VT_CHECK_ALIGNED(to, sizeof(U));
    for (size_t j = threadIdx.x; j < units; j += blockDim.x) to[j] = from[j];
  }
}

template <class U>
vt_status launch_copy_blocks(vt_context* ctx, void* cache, int32_t num_planes, size_t plane_stride_bytes,
                             size_t block_bytes, const int32_t* block_pairs, int32_t num_pairs) {
  const int threads = row_threads(block_bytes / sizeof(U), kMaxThreads);
  dim3 grid(unsigned(num_pairs), unsigned(num_planes) < kMaxGridY ? unsigned(num_planes) : kMaxGridY);
  auto kernel = &copy_blocks_kernel<U>;
  VT_LAUNCH(kernel, grid, threads, 0, ctx->stream, static_cast<char*>(cache), num_planes, plane_stride_bytes,
            block_bytes, block_pairs);
  return launch_status("vt_copy_blocks");
}

}  // namespace
}  // namespace vt::gpu

using namespace vt::gpu;

extern "C" {

vt_status vt_write_kv_cache(vt_context* ctx, const void* k, const void* v, void* k_cache, void* v_cache,
                            const int32_t* slot_mapping, int32_t num_tokens, int32_t num_kv_heads, int32_t head_dim,
                            int32_t row_stride, int32_t block_size, vt_dtype act_dtype, vt_dtype cache_dtype) {
  const char* op = "vt_write_kv_cache";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(check_act_storage(op, act_dtype, "cache_dtype", cache_dtype));
  VT_TRY(vt::check_write_kv_cache_sizes(op, num_tokens, num_kv_heads, head_dim, block_size));
  // The kernel indexes K and V of a token as one range of 2 * width items.
  VT_REQUIRE(int64_t(num_kv_heads) * head_dim <= INT32_MAX / 2, op, "num_kv_heads * head_dim is too large");
  VT_TRY(vt::check_write_kv_cache_args(op, k, v, k_cache, v_cache, slot_mapping, num_kv_heads, head_dim, row_stride));
  const int32_t width = num_kv_heads * head_dim;
  if (num_tokens == 0) return vt::ok();
  // Packs of 8: 16 bytes of a 16-bit dtype, two 16-byte halves of f32.
  const bool vector = width % kVec == 0 && row_stride % kVec == 0 && is_aligned(k, 16) && is_aligned(v, 16) &&
                      is_aligned(k_cache, 16) && is_aligned(v_cache, 16);
  const int threads = row_threads(vector ? size_t(2 * (width / kVec)) : size_t(2) * width, kMaxThreads);
  const unsigned blocks = grid_blocks(ctx, size_t(num_tokens), threads);
  with_act_storage(act_dtype, cache_dtype, [&](auto a, auto c) {
    using A = typename decltype(a)::type;
    using C = typename decltype(c)::type;
    auto kernel = &write_kv_cache_kernel<A, C>;
    VT_LAUNCH(kernel, blocks, threads, 0, ctx->stream, static_cast<const A*>(k), static_cast<const A*>(v),
              static_cast<C*>(k_cache), static_cast<C*>(v_cache), slot_mapping, num_tokens, width, row_stride, vector);
  });
  return launch_status(op);
}

vt_status vt_copy_blocks(vt_context* ctx, void* cache, int32_t num_planes, size_t plane_stride_bytes,
                         size_t block_bytes, const int32_t* block_pairs, int32_t num_pairs) {
  const char* op = "vt_copy_blocks";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_copy_blocks_args(op, cache, block_pairs, num_planes, num_pairs));
  if (num_planes == 0 || num_pairs == 0 || block_bytes == 0) return vt::ok();
  const size_t unit = widest_unit({block_bytes, plane_stride_bytes, address_of(cache)});
  auto launch = [&](auto tag) {
    using U = typename decltype(tag)::type;
    return launch_copy_blocks<U>(ctx, cache, num_planes, plane_stride_bytes, block_bytes, block_pairs, num_pairs);
  };
  switch (unit) {
    case 16:
      return launch(TypeTag<uint4>{});
    case 8:
      return launch(TypeTag<uint2>{});
    case 4:
      return launch(TypeTag<uint32_t>{});
    case 2:
      return launch(TypeTag<uint16_t>{});
    default:
      return launch(TypeTag<uint8_t>{});
  }
}

vt_status vt_swap_blocks(vt_context* ctx, void* dst, size_t dst_plane_stride_bytes, const void* src,
                         size_t src_plane_stride_bytes, int32_t num_planes, size_t block_bytes,
                         const int32_t* block_pairs, int32_t num_pairs, vt_copy_kind kind) {
  const char* op = "vt_swap_blocks";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_swap_blocks_args(op, dst, src, block_pairs, num_planes, num_pairs, kind));
  if (num_planes == 0 || num_pairs == 0 || block_bytes == 0) return vt::ok();
  const cudaMemcpyKind direction = kind == VT_COPY_DEVICE_TO_HOST ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice;
  auto* to = static_cast<char*>(dst);
  auto* from = static_cast<const char*>(src);
  // Planes as the rows of a 2-D copy need pitches within the limit and no smaller than the row.
  const bool pitches_fit = dst_plane_stride_bytes <= kMaxPitch && src_plane_stride_bytes <= kMaxPitch;
  for (int32_t i = 0; i < num_pairs;) {
    // A run of pairs (s, d), (s+1, d+1), ... is one contiguous range on both sides.
    int32_t run = 1;
    while (i + run < num_pairs && block_pairs[2 * (i + run)] == block_pairs[2 * i] + run &&
           block_pairs[2 * (i + run) + 1] == block_pairs[2 * i + 1] + run)
      run++;
    const size_t bytes = size_t(run) * block_bytes;
    const size_t src_offset = size_t(block_pairs[2 * i]) * block_bytes;
    const size_t dst_offset = size_t(block_pairs[2 * i + 1]) * block_bytes;
    if (num_planes == 1) {
      VT_CUDA_TRY(cudaMemcpyAsync(to + dst_offset, from + src_offset, bytes, direction, ctx->stream), op);
    } else if (pitches_fit && bytes <= dst_plane_stride_bytes && bytes <= src_plane_stride_bytes) {
      VT_CUDA_TRY(cudaMemcpy2DAsync(to + dst_offset, dst_plane_stride_bytes, from + src_offset, src_plane_stride_bytes,
                                    bytes, size_t(num_planes), direction, ctx->stream),
                  op);
    } else {
      for (int32_t plane = 0; plane < num_planes; plane++)
        VT_CUDA_TRY(
            cudaMemcpyAsync(to + size_t(plane) * dst_plane_stride_bytes + dst_offset,
                            from + size_t(plane) * src_plane_stride_bytes + src_offset, bytes, direction, ctx->stream),
            op);
    }
    i += run;
  }
  return vt::ok();
}

}  // extern "C"
