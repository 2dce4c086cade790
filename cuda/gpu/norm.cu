// RMSNorm over whole rows (fused with the residual add) and per attention head (Qwen3's q/k
// norm). Sums of squares accumulate in f32.
//
// Both are memory bound: a row is read (twice: the second time from L1/L2, where the first pass
// left it), and written once; the arithmetic is a multiply-add per element. vt_rms_norm gives a
// row (4..16 KB) to one block, whose threads stride over it in Packs of 8 elements and combine
// their partial sums with one block reduction; a grid-stride loop over rows keeps one wave of
// blocks resident for long prefill batches. vt_head_rms_norm's rows are short (a head of 64..256
// values), so one warp owns a head and reduces with shuffles alone, 8 heads per block.
//
// With a residual, the sum input + residual is rounded to the activation dtype when it is
// stored, and the norm is taken of that stored value, so `out` is exactly rmsnorm(residual) of
// the header's definition in every dtype.
#include <cmath>

#include "checks.h"
#include "vec.cuh"

namespace vt::gpu {
namespace {

constexpr int kRowThreads = 512;
constexpr int kRowVec = 8;
constexpr int kHeadThreads = 256;  // 8 warps: 8 heads per block
constexpr int kHeadVec = 4;        // a lane moves 4 elements (16 bytes of f32, 8 of a 16-bit dtype)

// The second pass of both norms: y[i] = x[i] * inv_rms * weight[i] over a row of n elements, the
// calling thread taking elements (or Packs of N, when vector) first, first + stride, ... y may
// alias x: each element is read by the thread that writes it.
template <int N, class A, class W>
__device__ __forceinline__ void scale_row(const A* x, const W* weight, A* y, int32_t n, float inv_rms, unsigned first,
                                          unsigned stride, bool vector) {
  if (vector) {
    for (int32_t j = first; j < n / N; j += stride) {
      float v[N], w[N];
      load_floats<N>(x + j * N, v);
      load_floats<N>(weight + j * N, w);
#pragma unroll
      for (int e = 0; e < N; e++) v[e] = v[e] * inv_rms * w[e];
      store_floats<N>(y + j * N, v);
    }
  } else {
    for (int32_t i = first; i < n; i += stride) y[i] = from_float<A>(to_float(x[i]) * inv_rms * to_float(weight[i]));
  }
}

template <class A, class W>
__global__ void rms_norm_kernel(const A* input, A* residual, const W* weight, A* out, int32_t num_tokens,
                                int32_t hidden_size, float eps, bool vector) {
  __shared__ float scratch[kWarpSize];
  for (int32_t t = blockIdx.x; t < num_tokens; t += gridDim.x) {
    const size_t base = size_t(t) * hidden_size;
    const A* x = input + base;
    A* r = residual ? residual + base : nullptr;
    float sum_squares = 0.0f;
    // Pass 1: the residual add (stored rounded to A) and the sum of squares of what is stored.
    if (vector) {
      for (int32_t j = threadIdx.x; j < hidden_size / kRowVec; j += blockDim.x) {
        float v[kRowVec];
        load_floats<kRowVec>(x + j * kRowVec, v);
        if (r) {
          float rv[kRowVec];
          load_floats<kRowVec>(r + j * kRowVec, rv);
#pragma unroll
          for (int e = 0; e < kRowVec; e++) v[e] = round_to<A>(v[e] + rv[e]);
          store_floats<kRowVec>(r + j * kRowVec, v);
        }
#pragma unroll
        for (int e = 0; e < kRowVec; e++) sum_squares += v[e] * v[e];
      }
    } else {
      for (int32_t i = threadIdx.x; i < hidden_size; i += blockDim.x) {
        float v = to_float(x[i]);
        if (r) {
          v = round_to<A>(v + to_float(r[i]));
          r[i] = from_float<A>(v);
        }
        sum_squares += v * v;
      }
    }
    // The reduction's barriers also order pass 1's reads of input before pass 2's writes of out
    // (which may alias it); each thread rereads exactly the elements it wrote to the residual.
    const float total = block_sum(sum_squares, scratch);
    const float inv_rms = 1.0f / sqrtf(total / float(hidden_size) + eps);
    scale_row<kRowVec>(r ? r : x, weight, out + base, hidden_size, inv_rms, threadIdx.x, blockDim.x, vector);
  }
}

template <class A, class W>
__global__ void head_rms_norm_kernel(A* x, const W* weight, int32_t num_tokens, int32_t num_heads, int32_t head_dim,
                                     int32_t row_stride, float eps, bool vector) {
  const int lane = threadIdx.x % kWarpSize;
  const size_t warps_per_block = blockDim.x / kWarpSize;
  const size_t total = size_t(num_tokens) * num_heads;
  // The loop index is the same for every lane of a warp, so whole warps reach the shuffles.
  for (size_t head = blockIdx.x * warps_per_block + threadIdx.x / kWarpSize; head < total;
       head += size_t(gridDim.x) * warps_per_block) {
    const size_t t = head / num_heads, h = head % num_heads;
    A* p = x + t * row_stride + h * head_dim;
    float sum_squares = 0.0f;
    if (vector) {
      for (int32_t j = lane; j < head_dim / kHeadVec; j += kWarpSize) {
        float v[kHeadVec];
        load_floats<kHeadVec>(p + j * kHeadVec, v);
#pragma unroll
        for (int e = 0; e < kHeadVec; e++) sum_squares += v[e] * v[e];
      }
    } else {
      for (int32_t i = lane; i < head_dim; i += kWarpSize) {
        float v = to_float(p[i]);
        sum_squares += v * v;
      }
    }
    const float inv_rms = 1.0f / sqrtf(warp_sum(sum_squares) / float(head_dim) + eps);
    scale_row<kHeadVec>(p, weight, p, head_dim, inv_rms, lane, kWarpSize, vector);
  }
}

}  // namespace
}  // namespace vt::gpu

using namespace vt::gpu;

extern "C" {

vt_status vt_rms_norm(vt_context* ctx, const void* input, void* residual, const void* weight, void* out,
                      int32_t num_tokens, int32_t hidden_size, float eps, vt_dtype act_dtype, vt_dtype weight_dtype) {
  const char* op = "vt_rms_norm";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(check_act_storage(op, act_dtype, "weight_dtype", weight_dtype));
  VT_TRY(vt::check_rms_norm_args(op, input, weight, out, num_tokens, hidden_size));
  if (num_tokens == 0) return vt::ok();
  const size_t act_vector_bytes = kRowVec * vt::dtype_bytes(act_dtype) < 16 ? kRowVec * vt::dtype_bytes(act_dtype) : 16;
  const size_t weight_vector_bytes =
      kRowVec * vt::dtype_bytes(weight_dtype) < 16 ? kRowVec * vt::dtype_bytes(weight_dtype) : 16;
  const bool vector = hidden_size % kRowVec == 0 && is_aligned(input, act_vector_bytes) &&
                      is_aligned(out, act_vector_bytes) && is_aligned(residual, act_vector_bytes) &&
                      is_aligned(weight, weight_vector_bytes);
  const int threads = row_threads(vector ? size_t(hidden_size / kRowVec) : size_t(hidden_size), kRowThreads);
  const unsigned blocks = grid_blocks(ctx, size_t(num_tokens), threads);
  with_act_storage(act_dtype, weight_dtype, [&](auto a, auto w) {
    using A = typename decltype(a)::type;
    using W = typename decltype(w)::type;
    auto kernel = &rms_norm_kernel<A, W>;
    VT_LAUNCH(kernel, blocks, threads, 0, ctx->stream, static_cast<const A*>(input), static_cast<A*>(residual),
              static_cast<const W*>(weight), static_cast<A*>(out), num_tokens, hidden_size, eps, vector);
  });
  return launch_status(op);
}

vt_status vt_head_rms_norm(vt_context* ctx, void* x, const void* weight, int32_t num_tokens, int32_t num_heads,
                           int32_t head_dim, int32_t row_stride, float eps, vt_dtype act_dtype, vt_dtype weight_dtype) {
  const char* op = "vt_head_rms_norm";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(check_act_storage(op, act_dtype, "weight_dtype", weight_dtype));
  VT_TRY(vt::check_head_rms_norm_args(op, x, weight, num_tokens, num_heads, head_dim, row_stride));
  if (num_tokens == 0 || num_heads == 0) return vt::ok();
  const bool vector = head_dim % kHeadVec == 0 && row_stride % kHeadVec == 0 &&
                      is_aligned(x, kHeadVec * vt::dtype_bytes(act_dtype)) &&
                      is_aligned(weight, kHeadVec * vt::dtype_bytes(weight_dtype));
  const size_t heads = size_t(num_tokens) * num_heads;
  const unsigned blocks = grid_blocks(ctx, ceil_div(heads, kHeadThreads / kWarpSize), kHeadThreads);
  with_act_storage(act_dtype, weight_dtype, [&](auto a, auto w) {
    using A = typename decltype(a)::type;
    using W = typename decltype(w)::type;
    auto kernel = &head_rms_norm_kernel<A, W>;
    VT_LAUNCH(kernel, blocks, kHeadThreads, 0, ctx->stream, static_cast<A*>(x), static_cast<const W*>(weight),
              num_tokens, num_heads, head_dim, row_stride, eps, vector);
  });
  return launch_status(op);
}

}  // extern "C"
