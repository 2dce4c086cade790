// The gated activations of an MLP over a fused gate_up projection: SiLU (Llama) and tanh-GELU
// (Gemma's GeGLU), out = act(gate) * up.
//
// Memory bound (two reads and one write per output element against an expf or tanhf and a few flops).
// A decode step has a handful of rows of d = 8..28k elements, a prefill thousands, so the work
// is cut into (row, chunk of kThreads * 8 columns) pieces, walked by a grid-stride loop over
// one wave of blocks: every thread moves 8 gate and 8 up values as 16-byte vectors (two for
// f32) and stores 8 outputs.
#include <cmath>

#include "checks.h"
#include "vec.cuh"

namespace vt::gpu {
namespace {

constexpr int kThreads = 256;
constexpr int kVec = 8;
constexpr int kChunk = kThreads * kVec;  // columns per (row, chunk) piece

struct Silu {
  __device__ __forceinline__ static float apply(float g) { return g / (1.0f + expf(-g)); }
};

struct GeluTanh {
  __device__ __forceinline__ static float apply(float g) {
    constexpr float kSqrt2OverPi = 0.7978845608028654f;
    return 0.5f * g * (1.0f + tanhf(kSqrt2OverPi * (g + 0.044715f * g * g * g)));
  }
};

template <class Activation, class A>
__global__ void gated_activation_kernel(const A* x, A* out, int32_t num_tokens, int32_t d, bool vector) {
  const size_t chunks = (size_t(d) + kChunk - 1) / kChunk;
  const size_t pieces = size_t(num_tokens) * chunks;
  for (size_t piece = blockIdx.x; piece < pieces; piece += gridDim.x) {
    const size_t t = piece / chunks;
    const int32_t first = int32_t(piece - t * chunks) * kChunk;
    const A* gate = x + t * 2 * size_t(d);
    const A* up = gate + d;
    A* y = out + t * size_t(d);
    if (vector) {
      const int32_t i = first + threadIdx.x * kVec;
      if (i < d) {
        float g[kVec], u[kVec];
        load_floats<kVec>(gate + i, g);
        load_floats<kVec>(up + i, u);
#pragma unroll
        for (int e = 0; e < kVec; e++) g[e] = Activation::apply(g[e]) * u[e];
        store_floats<kVec>(y + i, g);
      }
    } else {
#pragma unroll
      for (int e = 0; e < kVec; e++) {
        const int32_t i = first + e * kThreads + threadIdx.x;
        if (i < d) y[i] = from_float<A>(Activation::apply(to_float(gate[i])) * to_float(up[i]));
      }
    }
  }
}

template <class Activation>
vt_status launch_gated_activation(vt_context* ctx, const char* op, const void* x, void* out, int32_t num_tokens,
                                  int32_t d, vt_dtype act_dtype) {
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_storage_dtype(op, "act_dtype", act_dtype));
  VT_TRY(vt::check_gated_activation_args(op, x, out, num_tokens, d));
  if (num_tokens == 0 || d == 0) return vt::ok();
  const bool vector = d % kVec == 0 && is_aligned(x, 16) && is_aligned(out, 16);
  const size_t pieces = size_t(num_tokens) * ceil_div(size_t(d), kChunk);
  const unsigned blocks = grid_blocks(ctx, pieces, kThreads);
  with_dtype(act_dtype, [&](auto a) {
    using A = typename decltype(a)::type;
    auto kernel = &gated_activation_kernel<Activation, A>;
    VT_LAUNCH(kernel, blocks, kThreads, 0, ctx->stream, static_cast<const A*>(x), static_cast<A*>(out), num_tokens, d,
              vector);
  });
  return launch_status(op);
}

}  // namespace
}  // namespace vt::gpu

using namespace vt::gpu;

extern "C" {

vt_status vt_silu_and_mul(vt_context* ctx, const void* x, void* out, int32_t num_tokens, int32_t d,
                          vt_dtype act_dtype) {
  return launch_gated_activation<Silu>(ctx, "vt_silu_and_mul", x, out, num_tokens, d, act_dtype);
}

vt_status vt_gelu_tanh_and_mul(vt_context* ctx, const void* x, void* out, int32_t num_tokens, int32_t d,
                               vt_dtype act_dtype) {
  return launch_gated_activation<GeluTanh>(ctx, "vt_gelu_tanh_and_mul", x, out, num_tokens, d, act_dtype);
}

}  // extern "C"
