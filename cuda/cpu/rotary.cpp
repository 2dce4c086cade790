// Rotary position embedding: the cos/sin table (with Llama 3.1 frequency scaling) and its
// application to q and k in the Hugging Face "rotate half" form.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "checks.h"
#include "common.h"
#include "op.h"

namespace {

// theta^(-2i/rotary_dim), divided by `factor` for linear scaling, or adjusted as Llama 3.1 does: low frequencies (long
// wavelengths) are slowed down by `factor`, high ones kept, and the band between blends the two linearly.
std::vector<double> inverse_frequencies(int32_t rotary_dim, double theta, vt_rope_scaling_type scaling, double factor,
                                        double low_freq_factor, double high_freq_factor, double original_max_position) {
  std::vector<double> inv_freq(rotary_dim / 2);
  for (int32_t i = 0; i < rotary_dim / 2; i++) {
    double f = std::pow(theta, -2.0 * i / rotary_dim);
    if (scaling == VT_ROPE_SCALING_LINEAR) f = f / factor;
    if (scaling == VT_ROPE_SCALING_LLAMA3) {
      double wavelen = 2.0 * M_PI / f;
      double low_freq_wavelen = original_max_position / low_freq_factor;
      double high_freq_wavelen = original_max_position / high_freq_factor;
      if (wavelen > low_freq_wavelen) {
        f = f / factor;
      } else if (wavelen >= high_freq_wavelen) {
        double smooth = (original_max_position / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
        f = (1.0 - smooth) * f / factor + smooth * f;
      }
    }
    inv_freq[i] = f;
  }
  return inv_freq;
}

}  // namespace

extern "C" {

// Compute-bound (cos and sin in f64, once per model load); a thread owns whole positions.
vt_status vt_rope_cos_sin_cache(vt_context* ctx, float* cos_sin, int32_t max_position, int32_t rotary_dim, float theta,
                                vt_rope_scaling_type scaling_type, float factor, float low_freq_factor,
                                float high_freq_factor, int32_t original_max_position) {
  const char* op = "vt_rope_cos_sin_cache";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_rope_cos_sin_cache_args(op, cos_sin, max_position, rotary_dim, theta, scaling_type, factor,
                                           low_freq_factor, high_freq_factor, original_max_position));
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_rope_cos_sin_cache, cos_sin, max_position, rotary_dim, theta, scaling_type, factor,
                         low_freq_factor, high_freq_factor, original_max_position);
  std::vector<double> inv_freq = inverse_frequencies(rotary_dim, theta, scaling_type, factor, low_freq_factor,
                                                     high_freq_factor, original_max_position);
  int32_t half = rotary_dim / 2;
#pragma omp parallel for num_threads(ctx->num_threads) schedule(static)
  for (int32_t p = 0; p < max_position; p++) {
    float* row = cos_sin + size_t(p) * rotary_dim;
    for (int32_t i = 0; i < half; i++) {
      double angle = double(p) * inv_freq[i];
      row[i] = float(std::cos(angle));
      row[half + i] = float(std::sin(angle));
    }
  }
  return vt::ok();
}

// Memory-bound; a thread owns whole (token, head) slices, q heads and k heads alike.
vt_status vt_rotary_embedding(vt_context* ctx, const int32_t* positions, void* q, void* k, const float* cos_sin,
                              int32_t num_tokens, int32_t num_q_heads, int32_t num_kv_heads, int32_t head_dim,
                              int32_t rotary_dim, int32_t row_stride, vt_dtype act_dtype) {
  const char* op = "vt_rotary_embedding";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_act_dtype(op, act_dtype));
  VT_TRY(vt::check_rotary_embedding_args(op, positions, q, k, cos_sin, num_tokens, num_q_heads, num_kv_heads, head_dim,
                                         rotary_dim, row_stride));
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_rotary_embedding, positions, q, k, cos_sin, num_tokens, num_q_heads, num_kv_heads,
                         head_dim, rotary_dim, row_stride, act_dtype);
  for (int32_t t = 0; t < num_tokens; t++)
    VT_REQUIRE(positions[t] >= 0, op, "positions[" + std::to_string(t) + "] is negative");
  int32_t half = rotary_dim / 2;
  int32_t heads = num_q_heads + num_kv_heads;
#pragma omp parallel for collapse(2) num_threads(vt::threads_for(ctx, size_t(num_tokens) * heads * rotary_dim)) \
    schedule(static)
  for (int32_t t = 0; t < num_tokens; t++)
    for (int32_t h = 0; h < heads; h++) {
      float* base = static_cast<float*>(h < num_q_heads ? q : k);
      float* x = base + size_t(t) * row_stride + size_t(h < num_q_heads ? h : h - num_q_heads) * head_dim;
      const float* cos = cos_sin + size_t(positions[t]) * rotary_dim;
      const float* sin = cos + half;
#pragma omp simd
      for (int32_t i = 0; i < half; i++) {
        float x1 = x[i], x2 = x[half + i];
        x[i] = x1 * cos[i] - x2 * sin[i];
        x[half + i] = x2 * cos[i] + x1 * sin[i];
      }
    }
  return vt::ok();
}

}  // extern "C"
