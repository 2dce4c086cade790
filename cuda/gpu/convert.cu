// Element-wise dtype conversion and the deterministic uniform fill of random-weight models.
//
// Both are memory bound (a conversion does one load and one store per element, the fill only a
// store plus a few integer ops of hashing), so they are written for bandwidth: each thread moves
// 8 elements per step as 16-byte vectors (two for f32), in a grid-stride loop over one wave of
// resident blocks; the count % 8 elements of the tail are done one per thread at the end.
// Misaligned pointers (offsets into a buffer) fall back to element accesses in the same loop.
#include "checks.h"
#include "quant.cuh"
#include "uniform.h"
#include "vec.cuh"

namespace vt::gpu {
namespace {

constexpr int kThreads = 256;
constexpr int kVec = 8;  // elements per thread step: 16 bytes of a 16-bit dtype

template <class S, class D>
__global__ void convert_kernel(D* dst, const S* src, size_t count, bool vector) {
  const size_t thread = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  const size_t groups = count / kVec;
  for (size_t g = thread; g < groups; g += stride) {
    const size_t i = g * kVec;
    if (vector) {
      float v[kVec];
      load_floats<kVec>(src + i, v);
      store_floats<kVec>(dst + i, v);
    } else {
#pragma unroll
      for (int e = 0; e < kVec; e++) dst[i + e] = from_float<D>(to_float(src[i + e]));
    }
  }
  const size_t tail = groups * kVec + thread;
  if (tail < count) dst[tail] = from_float<D>(to_float(src[tail]));
}

template <class D>
__global__ void fill_uniform_kernel(D* dst, size_t count, uint32_t seed, float scale, bool vector) {
  const size_t thread = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  const size_t groups = count / kVec;
  for (size_t g = thread; g < groups; g += stride) {
    const size_t i = g * kVec;
    float v[kVec];
#pragma unroll
    for (int e = 0; e < kVec; e++) v[e] = uniform_value(i + e, seed, scale);
    if (vector) {
      store_floats<kVec>(dst + i, v);
    } else {
#pragma unroll
      for (int e = 0; e < kVec; e++) dst[i + e] = from_float<D>(v[e]);
    }
  }
  const size_t tail = groups * kVec + thread;
  if (tail < count) dst[tail] = from_float<D>(uniform_value(tail, seed, scale));
}

// Blocks for `count` elements at kVec per thread (at least enough threads for the tail).
unsigned blocks_for(const vt_context* ctx, size_t count) {
  return grid_blocks(ctx, ceil_div(ceil_div(count, kVec), kThreads), kThreads);
}

}  // namespace
}  // namespace vt::gpu

using namespace vt::gpu;

extern "C" {

vt_status vt_convert(vt_context* ctx, void* dst, vt_dtype dst_dtype, const void* src, vt_dtype src_dtype,
                     size_t count) {
  const char* op = "vt_convert";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_convert_args(op, dst, dst_dtype, src, src_dtype, count));
  if (count == 0) return vt::ok();
  if (dst_dtype == src_dtype) {
    VT_CUDA_TRY(cudaMemcpyAsync(dst, src, vt::storage_bytes(src_dtype, count), cudaMemcpyDeviceToDevice, ctx->stream),
                op);
    return vt::ok();
  }
  if (vt::quant::is_quantized(src_dtype) || vt::quant::is_quantized(dst_dtype))
    return convert_quantized(ctx, dst, dst_dtype, src, src_dtype, count);
  // Both sides must hold whole aligned Packs of 8: 16 bytes for 16-bit dtypes, 32 (two 16-byte
  // vectors) for f32, so 16-byte alignment of both pointers is what the vector path needs.
  const bool vector = is_aligned(dst, 16) && is_aligned(src, 16);
  const unsigned blocks = blocks_for(ctx, count);
  with_dtype(src_dtype, [&](auto s) {
    using S = typename decltype(s)::type;
    with_dtype(dst_dtype, [&](auto d) {
      using D = typename decltype(d)::type;
      auto kernel = &convert_kernel<S, D>;
      VT_LAUNCH(kernel, blocks, kThreads, 0, ctx->stream, static_cast<D*>(dst), static_cast<const S*>(src), count,
                vector);
    });
  });
  return launch_status(op);
}

vt_status vt_fill_uniform(vt_context* ctx, void* dst, vt_dtype dtype, size_t count, uint32_t seed, float scale) {
  const char* op = "vt_fill_uniform";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_fill_uniform_args(op, dst, dtype, count));
  if (count == 0) return vt::ok();
  const bool vector = is_aligned(dst, 16);
  const unsigned blocks = blocks_for(ctx, count);
  with_dtype(dtype, [&](auto d) {
    using D = typename decltype(d)::type;
    auto kernel = &fill_uniform_kernel<D>;
    VT_LAUNCH(kernel, blocks, kThreads, 0, ctx->stream, static_cast<D*>(dst), count, seed, scale, vector);
  });
  return launch_status(op);
}

}  // extern "C"
