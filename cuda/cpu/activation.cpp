// The gated activations of an MLP over a fused gate_up projection: SiLU (Llama) and tanh-GELU
// (Gemma's GeGLU), out = act(gate) * up.
#include <algorithm>
#include <cmath>

#include "checks.h"
#include "common.h"
#include "op.h"

namespace {
// Columns per loop iteration: a decode step has a single row, so rows alone leave threads idle.
constexpr int32_t kColumns = 1024;

inline float silu(float g) { return g / (1.0f + std::exp(-g)); }

inline float gelu_tanh(float g) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * g * (1.0f + std::tanh(kSqrt2OverPi * (g + 0.044715f * g * g * g)));
}

// Memory-bound; a thread owns (row, column range) pieces.
template <float (*Activation)(float)>
void gated_activation(vt_context* ctx, const void* x, void* out, int32_t num_tokens, int32_t d) {
  auto* in = static_cast<const float*>(x);
  auto* y = static_cast<float*>(out);
  int32_t pieces = (d + kColumns - 1) / kColumns;
#pragma omp parallel for collapse(2) num_threads(vt::threads_for(ctx, size_t(num_tokens) * d)) schedule(static)
  for (int32_t t = 0; t < num_tokens; t++)
    for (int32_t p = 0; p < pieces; p++) {
      const float* gate = in + size_t(t) * 2 * d;
      const float* up = gate + d;
      float* row = y + size_t(t) * d;
      int32_t end = std::min(d, (p + 1) * kColumns);
      for (int32_t i = p * kColumns; i < end; i++) row[i] = Activation(gate[i]) * up[i];
    }
}
}  // namespace

extern "C" {

vt_status vt_silu_and_mul(vt_context* ctx, const void* x, void* out, int32_t num_tokens, int32_t d,
                          vt_dtype act_dtype) {
  const char* op = "vt_silu_and_mul";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_act_dtype(op, act_dtype));
  VT_TRY(vt::check_gated_activation_args(op, x, out, num_tokens, d));
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_silu_and_mul, x, out, num_tokens, d, act_dtype);
  gated_activation<silu>(ctx, x, out, num_tokens, d);
  return vt::ok();
}

vt_status vt_gelu_tanh_and_mul(vt_context* ctx, const void* x, void* out, int32_t num_tokens, int32_t d,
                               vt_dtype act_dtype) {
  const char* op = "vt_gelu_tanh_and_mul";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_act_dtype(op, act_dtype));
  VT_TRY(vt::check_gated_activation_args(op, x, out, num_tokens, d));
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_gelu_tanh_and_mul, x, out, num_tokens, d, act_dtype);
  gated_activation<gelu_tanh>(ctx, x, out, num_tokens, d);
  return vt::ok();
}

}  // extern "C"
