// Rotary position embedding: the cos/sin table (with Llama 3.1 frequency scaling) and its
// application to q and k in the Hugging Face "rotate half" form.
//
// vt_rope_cos_sin_cache runs once per model load and is compute bound (a double-precision cos
// and sin per entry, as the CPU backend computes them, so both tables agree to the last f32 bit
// or one ulp): a block owns a run of positions and its threads the frequencies, each computing
// its inverse frequency once and then walking the positions, so consecutive threads write
// consecutive floats of a row.
//
// vt_rotary_embedding is memory bound (a read and a write of every rotated value, 4 flops
// each): a block owns a token and its threads the (head, 4 frequencies) pieces of all its q and
// k heads; a thread loads x1 and x2 of 4 frequencies as vectors, and their cos and sin as two
// float4 (the table rows are shared by every head of the token, so they stay in L1).
#include <cmath>

#include "checks.h"
#include "vec.cuh"

namespace vt::gpu {
namespace {

constexpr int kTablePositionsPerBlock = 32;
constexpr int kTableMaxThreads = 256;
constexpr int kRotaryMaxThreads = 256;
constexpr int kRotaryVec = 4;
constexpr double kPi = 3.14159265358979323846;

struct Scaling {
  vt_rope_scaling_type type;
  double factor, low_freq_factor, high_freq_factor, original_max_position;
};

// theta^(-2i/rotary_dim), divided by `factor` for linear scaling, or adjusted as Llama 3.1 does: low frequencies (long
// wavelengths) are slowed down by `factor`, high ones kept, and the band between blends the two linearly. The same
// double-precision steps as cuda/cpu/rotary.cpp.
__device__ __forceinline__ double inverse_frequency(int32_t i, int32_t rotary_dim, double theta, const Scaling& s) {
  double f = pow(theta, -2.0 * i / rotary_dim);
  if (s.type == VT_ROPE_SCALING_LINEAR) f = f / s.factor;
  if (s.type == VT_ROPE_SCALING_LLAMA3) {
    double wavelen = 2.0 * kPi / f;
    double low_freq_wavelen = s.original_max_position / s.low_freq_factor;
    double high_freq_wavelen = s.original_max_position / s.high_freq_factor;
    if (wavelen > low_freq_wavelen) {
      f = f / s.factor;
    } else if (wavelen >= high_freq_wavelen) {
      double smooth =
          (s.original_max_position / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      f = (1.0 - smooth) * f / s.factor + smooth * f;
    }
  }
  return f;
}

__global__ void cos_sin_kernel(float* cos_sin, int32_t max_position, int32_t rotary_dim, double theta,
                               Scaling scaling) {
  const int32_t half = rotary_dim / 2;
  const int32_t first = blockIdx.x * kTablePositionsPerBlock;
  const int32_t last = first + kTablePositionsPerBlock < max_position ? first + kTablePositionsPerBlock : max_position;
  for (int32_t i = threadIdx.x; i < half; i += blockDim.x) {
    const double inv_freq = inverse_frequency(i, rotary_dim, theta, scaling);
    for (int32_t p = first; p < last; p++) {
      const double angle = double(p) * inv_freq;
      float* row = cos_sin + size_t(p) * rotary_dim;
      row[i] = float(cos(angle));
      row[half + i] = float(sin(angle));
    }
  }
}

template <class A>
__global__ void rotary_kernel(const int32_t* positions, A* q, A* k, const float* cos_sin, int32_t num_tokens,
                              int32_t num_q_heads, int32_t num_kv_heads, int32_t head_dim, int32_t rotary_dim,
                              int32_t row_stride, bool vector) {
  const int32_t half = rotary_dim / 2;
  const int32_t heads = num_q_heads + num_kv_heads;
  const int32_t step = vector ? kRotaryVec : 1;  // frequencies per thread item
  const int32_t items_per_head = half / step;
  for (int32_t t = blockIdx.x; t < num_tokens; t += gridDim.x) {
    const int32_t position = positions[t];
    if (position < 0) continue;  // not checkable on the host without a sync: the token is left as is
    const float* cos_row = cos_sin + size_t(position) * rotary_dim;
    const float* sin_row = cos_row + half;
    for (int32_t j = threadIdx.x; j < heads * items_per_head; j += blockDim.x) {
      const int32_t h = j / items_per_head;
      const int32_t i = (j - h * items_per_head) * step;
      A* x = (h < num_q_heads ? q + size_t(h) * head_dim : k + size_t(h - num_q_heads) * head_dim) +
             size_t(t) * row_stride;
      if (vector) {
        float x1[kRotaryVec], x2[kRotaryVec], c[kRotaryVec], s[kRotaryVec];
        load_floats<kRotaryVec>(x + i, x1);
        load_floats<kRotaryVec>(x + half + i, x2);
        load_floats<kRotaryVec>(cos_row + i, c);
        load_floats<kRotaryVec>(sin_row + i, s);
        float y1[kRotaryVec], y2[kRotaryVec];
#pragma unroll
        for (int e = 0; e < kRotaryVec; e++) {
          y1[e] = x1[e] * c[e] - x2[e] * s[e];
          y2[e] = x2[e] * c[e] + x1[e] * s[e];
        }
        store_floats<kRotaryVec>(x + i, y1);
        store_floats<kRotaryVec>(x + half + i, y2);
      } else {
        const float x1 = to_float(x[i]), x2 = to_float(x[half + i]);
        const float c = cos_row[i], s = sin_row[i];
        x[i] = from_float<A>(x1 * c - x2 * s);
        x[half + i] = from_float<A>(x2 * c + x1 * s);
      }
    }
  }
}

}  // namespace
}  // namespace vt::gpu

using namespace vt::gpu;

extern "C" {

vt_status vt_rope_cos_sin_cache(vt_context* ctx, float* cos_sin, int32_t max_position, int32_t rotary_dim, float theta,
                                vt_rope_scaling_type scaling_type, float factor, float low_freq_factor,
                                float high_freq_factor, int32_t original_max_position) {
  const char* op = "vt_rope_cos_sin_cache";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_rope_cos_sin_cache_args(op, cos_sin, max_position, rotary_dim, theta, scaling_type, factor,
                                           low_freq_factor, high_freq_factor, original_max_position));
  if (max_position == 0) return vt::ok();
  const Scaling scaling{scaling_type, double(factor), double(low_freq_factor), double(high_freq_factor),
                        double(original_max_position)};
  const int threads = row_threads(size_t(rotary_dim / 2), kTableMaxThreads);
  const unsigned blocks = ceil_div(size_t(max_position), kTablePositionsPerBlock);
  auto kernel = &cos_sin_kernel;
  VT_LAUNCH(kernel, blocks, threads, 0, ctx->stream, cos_sin, max_position, rotary_dim, double(theta), scaling);
  return launch_status(op);
}

vt_status vt_rotary_embedding(vt_context* ctx, const int32_t* positions, void* q, void* k, const float* cos_sin,
                              int32_t num_tokens, int32_t num_q_heads, int32_t num_kv_heads, int32_t head_dim,
                              int32_t rotary_dim, int32_t row_stride, vt_dtype act_dtype) {
  const char* op = "vt_rotary_embedding";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_storage_dtype(op, "act_dtype", act_dtype));
  VT_TRY(vt::check_rotary_embedding_args(op, positions, q, k, cos_sin, num_tokens, num_q_heads, num_kv_heads, head_dim,
                                         rotary_dim, row_stride));
  // Positions live on the device: a negative one cannot be rejected here (that would need a
  // synchronization); the kernel leaves such a token unrotated.
  if (num_tokens == 0 || num_q_heads + num_kv_heads == 0) return vt::ok();
  const size_t act_bytes = vt::dtype_bytes(act_dtype);
  const int32_t half = rotary_dim / 2;
  const bool vector = half % kRotaryVec == 0 && head_dim % kRotaryVec == 0 && row_stride % kRotaryVec == 0 &&
                      is_aligned(q, kRotaryVec * act_bytes) && is_aligned(k, kRotaryVec * act_bytes) &&
                      is_aligned(cos_sin, 16);
  const size_t items = size_t(num_q_heads + num_kv_heads) * (vector ? half / kRotaryVec : half);
  const int threads = row_threads(items, kRotaryMaxThreads);
  const unsigned blocks = grid_blocks(ctx, size_t(num_tokens), threads);
  with_dtype(act_dtype, [&](auto a) {
    using A = typename decltype(a)::type;
    auto kernel = &rotary_kernel<A>;
    VT_LAUNCH(kernel, blocks, threads, 0, ctx->stream, positions, static_cast<A*>(q), static_cast<A*>(k), cos_sin,
              num_tokens, num_q_heads, num_kv_heads, head_dim, rotary_dim, row_stride, vector);
  });
  return launch_status(op);
}

}  // extern "C"
