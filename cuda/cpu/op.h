// What the op files share beyond common.h: argument checks on dtypes, a dispatch that turns a
// runtime storage dtype into a template argument, the thread count of a memory-bound loop, and
// the maximum of a logits row.
#pragma once

#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>

#include "common.h"
#include "graph.h"

namespace vt {

// The CPU backend computes activations in f32 only.
inline vt_status check_act_dtype(const char* op, vt_dtype d) {
  VT_TRY(check_storage_dtype(op, "act_dtype", d));
  if (d == VT_F32) return VT_OK;
  return fail(VT_ERR_UNSUPPORTED,
              std::string(op) + ": the CPU backend computes activations in f32 only, got act_dtype " + dtype_name(d));
}

// Calls f(std::integral_constant<vt_dtype, D>{}) for the runtime dtype d: kernels are
// instantiated per storage dtype, so vt::load/store fold to one conversion in the inner loops.
template <class F>
void with_dtype(vt_dtype d, F&& f) {
  switch (d) {
    case VT_F32:
      f(std::integral_constant<vt_dtype, VT_F32>{});
      break;
    case VT_F16:
      f(std::integral_constant<vt_dtype, VT_F16>{});
      break;
    default:
      f(std::integral_constant<vt_dtype, VT_BF16>{});
      break;
  }
}

// Below this many elements (or cache lines, for copies) of memory-bound work, one thread is
// faster than waking the others: a decode step's ops touch only a few thousand elements.
constexpr size_t kMinParallelWork = size_t(1) << 15;

inline int threads_for(const vt_context* ctx, size_t work) { return work < kMinParallelWork ? 1 : ctx->num_threads; }

// The largest of row[0, n): NaNs never win (-inf when there is nothing else). Vectorised; with
// first_index_of after it, two passes give the lowest index among ties without a branchy loop.
inline float max_of(const float* row, int32_t n) {
  float best = -INFINITY;
#pragma omp simd reduction(max : best)
  for (int32_t i = 0; i < n; i++) best = row[i] > best ? row[i] : best;
  return best;
}

// The lowest i with row[i] == value, or 0 when there is none (an all-NaN row's argmax).
inline int32_t first_index_of(const float* row, int32_t n, float value) {
  for (int32_t i = 0; i < n; i++)
    if (row[i] == value) return i;
  return 0;
}

}  // namespace vt
