// Soft-capping in place, x = cap * tanh(x / cap): Gemma's final_logit_softcapping on the logits.
#include <algorithm>
#include <cmath>

#include "checks.h"
#include "common.h"
#include "op.h"

namespace {
// Elements per loop iteration, so a single row of a large vocabulary spreads over the threads.
constexpr size_t kPiece = 4096;
}  // namespace

extern "C" {

// Memory-bound (a tanh per element against one read and one write); a thread owns pieces of x.
vt_status vt_soft_cap(vt_context* ctx, void* x, size_t count, float cap, vt_dtype act_dtype) {
  const char* op = "vt_soft_cap";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_act_dtype(op, act_dtype));
  VT_TRY(vt::check_soft_cap_args(op, x, count, cap));
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_soft_cap, x, count, cap, act_dtype);
  auto* values = static_cast<float*>(x);
  const size_t pieces = (count + kPiece - 1) / kPiece;
#pragma omp parallel for num_threads(vt::threads_for(ctx, count)) schedule(static)
  for (size_t p = 0; p < pieces; p++) {
    const size_t end = std::min(count, (p + 1) * kPiece);
    for (size_t i = p * kPiece; i < end; i++) values[i] = cap * std::tanh(values[i] / cap);
  }
  return vt::ok();
}

}  // extern "C"
