// RMSNorm over whole rows (fused with the residual add) and per attention head (Qwen3's q/k norm).
// Sums of squares accumulate in f32, as the header specifies.
#include <cmath>

#include "checks.h"
#include "common.h"
#include "op.h"

namespace {

// x[0..n) *= weight / sqrt(mean(x^2) + eps), reading `src` and writing `dst` (they may alias).
template <vt_dtype W>
inline void normalize(const float* src, float* dst, const void* weight, int32_t n, float eps) {
  float sum_squares = 0.0f;
#pragma omp simd reduction(+ : sum_squares)
  for (int32_t i = 0; i < n; i++) sum_squares += src[i] * src[i];
  float inv_rms = 1.0f / std::sqrt(sum_squares / float(n) + eps);
  for (int32_t i = 0; i < n; i++) dst[i] = src[i] * inv_rms * vt::load(weight, W, i);
}

}  // namespace

extern "C" {

// Memory-bound; a thread owns whole rows (tokens).
vt_status vt_rms_norm(vt_context* ctx, const void* input, void* residual, const void* weight, void* out,
                      int32_t num_tokens, int32_t hidden_size, float eps, vt_dtype act_dtype, vt_dtype weight_dtype) {
  const char* op = "vt_rms_norm";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_act_dtype(op, act_dtype));
  VT_TRY(vt::check_storage_dtype(op, "weight_dtype", weight_dtype));
  VT_TRY(vt::check_rms_norm_args(op, input, weight, out, num_tokens, hidden_size));
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_rms_norm, input, residual, weight, out, num_tokens, hidden_size, eps, act_dtype,
                         weight_dtype);
  auto* x = static_cast<const float*>(input);
  auto* r = static_cast<float*>(residual);
  auto* y = static_cast<float*>(out);
  vt::with_dtype(weight_dtype, [&](auto W) {
#pragma omp parallel for num_threads(vt::threads_for(ctx, size_t(num_tokens) * hidden_size)) schedule(static)
    for (int32_t t = 0; t < num_tokens; t++) {
      size_t base = size_t(t) * hidden_size;
      const float* src = x + base;
      if (r) {
        float* sum = r + base;
#pragma omp simd
        for (int32_t i = 0; i < hidden_size; i++) sum[i] += src[i];
        src = sum;
      }
      normalize<decltype(W)::value>(src, y + base, weight, hidden_size, eps);
    }
  });
  return vt::ok();
}

// Memory-bound; a thread owns whole (token, head) slices.
vt_status vt_head_rms_norm(vt_context* ctx, void* x, const void* weight, int32_t num_tokens, int32_t num_heads,
                           int32_t head_dim, int32_t row_stride, float eps, vt_dtype act_dtype, vt_dtype weight_dtype) {
  const char* op = "vt_head_rms_norm";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_act_dtype(op, act_dtype));
  VT_TRY(vt::check_storage_dtype(op, "weight_dtype", weight_dtype));
  VT_TRY(vt::check_head_rms_norm_args(op, x, weight, num_tokens, num_heads, head_dim, row_stride));
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_head_rms_norm, x, weight, num_tokens, num_heads, head_dim, row_stride, eps, act_dtype,
                         weight_dtype);
  auto* data = static_cast<float*>(x);
  vt::with_dtype(weight_dtype, [&](auto W) {
#pragma omp parallel for collapse(2) num_threads(vt::threads_for(ctx, size_t(num_tokens) * num_heads * head_dim)) \
    schedule(static)
    for (int32_t t = 0; t < num_tokens; t++)
      for (int32_t h = 0; h < num_heads; h++) {
        float* slice = data + size_t(t) * row_stride + size_t(h) * head_dim;
        normalize<decltype(W)::value>(slice, slice, weight, head_dim, eps);
      }
  });
  return vt::ok();
}

}  // extern "C"
