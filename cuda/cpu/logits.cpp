// Ops over rows of logits: greedy argmax and (temperature-scaled) log-softmax (logprobs).
#include <cmath>

#include "checks.h"
#include "common.h"
#include "op.h"

extern "C" {

// Memory-bound; a thread owns whole rows. Two passes (a vectorised max, then the first index
// holding it) give the lowest index among ties without a branchy single pass. NaNs never win.
vt_status vt_argmax(vt_context* ctx, const void* logits, int32_t* out, int32_t num_rows, int32_t vocab_size,
                    vt_dtype act_dtype) {
  const char* op = "vt_argmax";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_act_dtype(op, act_dtype));
  VT_TRY(vt::check_logits_args(op, logits, out, num_rows, vocab_size));
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_argmax, logits, out, num_rows, vocab_size, act_dtype);
  auto* x = static_cast<const float*>(logits);
#pragma omp parallel for num_threads(vt::threads_for(ctx, size_t(num_rows) * vocab_size)) schedule(static)
  for (int32_t r = 0; r < num_rows; r++) {
    const float* row = x + size_t(r) * vocab_size;
    out[r] = vt::first_index_of(row, vocab_size, vt::max_of(row, vocab_size));
  }
  return vt::ok();
}

// Memory-bound (and exp-bound); a thread owns whole rows. The sum of exponentials accumulates in
// f64 so a 150k-entry vocabulary loses nothing to rounding.
vt_status vt_log_softmax(vt_context* ctx, const void* logits, const float* temperatures, float* out, int32_t num_rows,
                         int32_t vocab_size, vt_dtype act_dtype) {
  const char* op = "vt_log_softmax";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_act_dtype(op, act_dtype));
  VT_TRY(vt::check_logits_args(op, logits, out, num_rows, vocab_size));
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_log_softmax, logits, temperatures, out, num_rows, vocab_size, act_dtype);
  auto* x = static_cast<const float*>(logits);
#pragma omp parallel for num_threads(vt::threads_for(ctx, size_t(num_rows) * vocab_size)) schedule(static)
  for (int32_t r = 0; r < num_rows; r++) {
    const float* row = x + size_t(r) * vocab_size;
    float* y = out + size_t(r) * vocab_size;
    float temperature = temperatures && temperatures[r] > 0.0f ? temperatures[r] : 1.0f;
    // Dividing by a positive number keeps the maximum where it was.
    const float row_max = vt::max_of(row, vocab_size) / temperature;
    double sum = 0.0;
    for (int32_t i = 0; i < vocab_size; i++) {
      float shifted = row[i] / temperature - row_max;
      y[i] = shifted;
      sum += std::exp(shifted);
    }
    float log_sum = float(std::log(sum));
#pragma omp simd
    for (int32_t i = 0; i < vocab_size; i++) y[i] -= log_sum;
  }
  return vt::ok();
}

}  // extern "C"
