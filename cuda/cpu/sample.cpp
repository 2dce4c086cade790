// vt_sample on the CPU: one token per row from the tempered softmax filtered by min_p, top_k and
// top_p, drawn by inverse CDF in vocabulary order (see vllm_ts.h and src/reference/sample.ts).
//
// Every filter keeps the tokens whose unnormalized weight e_i = exp((l_i - max) / T) is at or
// above a threshold, so a row reduces to finding one threshold t and then one ordered pass:
//   min_p: t = min_p (the maximum has e = 1, so p >= min_p * max(p) <=> e >= min_p);
//   top_k: the k-th largest weight of the survivors, by std::nth_element (expected O(V));
//   top_p: the largest survivor value v whose mass of survivors >= v reaches top_p of theirs,
//          by a weighted quickselect: partition around the median, keep the side that holds
//          the answer, carrying the mass of the values above it (O(V) overall; the median
//          pivot halves the range every round, three-way partitioning makes ties one step).
// Weights are f32 (as the GPU computes them), masses f64 so a 150k vocabulary sums exactly
// enough. A thread owns whole rows (a decode batch has a row per sequence).
#include <omp.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <functional>
#include <new>
#include <string>
#include <vector>

#include "checks.h"
#include "common.h"
#include "op.h"

namespace {

// Largest v among values[0, n) whose mass of values >= v reaches `target` (> 0). Reorders values.
// Invariant: `above` (the mass of the values already known to exceed [begin, end)) < target.
float top_p_threshold(float* values, size_t n, double target) {
  double above = 0.0;
  float* begin = values;
  float* end = values + n;
  while (end - begin > 16) {
    float* mid = begin + (end - begin) / 2;
    std::nth_element(begin, mid, end, std::greater<float>());
    const float pivot = *mid;
    float* greater_end = std::partition(begin, end, [pivot](float x) { return x > pivot; });
    float* equal_end = std::partition(greater_end, end, [pivot](float x) { return x == pivot; });
    double greater_mass = above;
    for (float* p = begin; p < greater_end; p++) greater_mass += *p;
    if (greater_mass >= target) {  // the answer is one of the larger values
      end = greater_end;
      continue;
    }
    const double equal_mass = greater_mass + double(equal_end - greater_end) * pivot;
    if (equal_mass >= target || equal_end == end) return pivot;
    above = equal_mass;
    begin = equal_end;
  }
  std::sort(begin, end, std::greater<float>());
  for (float* p = begin; p < end; p++) {
    above += *p;
    if (above >= target) return *p;
  }
  return end[-1];  // the target exceeds the mass only by rounding: keep every survivor
}

struct RowParams {
  float temperature, top_p, min_p, uniform;
  int32_t top_k;
};

// One row's token. `e` and `work` are scratch of vocab_size floats.
int32_t sample_row(const float* row, int32_t vocab_size, const RowParams& p, float* e, float* work) {
  const float row_max = vt::max_of(row, vocab_size);
  const int32_t argmax = vt::first_index_of(row, vocab_size, row_max);
  if (!(p.temperature > 0.0f) || !std::isfinite(row_max)) return argmax;

  // Multiplying by the reciprocal keeps the maximum's weight at exactly exp(0) = 1; the clamp
  // keeps it finite for subnormal temperatures.
  const float inv_t = 1.0f / std::max(p.temperature, FLT_MIN);
#pragma omp simd
  for (int32_t i = 0; i < vocab_size; i++) {
    const float w = std::exp((row[i] - row_max) * inv_t);
    e[i] = w >= 0.0f ? std::min(w, 1.0f) : 0.0f;  // a NaN logit weighs nothing
  }

  float t = p.min_p > 0.0f ? std::min(p.min_p, 1.0f) : 0.0f;
  const bool use_k = p.top_k > 0 && p.top_k < vocab_size;
  const bool use_p = p.top_p < 1.0f;
  if (use_k || use_p) {
    size_t n = 0;
    for (int32_t i = 0; i < vocab_size; i++)
      if (e[i] >= t) work[n++] = e[i];
    if (use_k && n > size_t(p.top_k)) {
      std::nth_element(work, work + (p.top_k - 1), work + n, std::greater<float>());
      t = work[p.top_k - 1];
      n = size_t(std::remove_if(work, work + n, [t](float x) { return x < t; }) - work);
    }
    if (use_p) {
      double mass = 0.0;
      for (size_t j = 0; j < n; j++) mass += work[j];
      const double target = double(p.top_p) * mass;
      // top_p <= 0 keeps the most likely tokens, as every filter does.
      t = target > 0.0 ? top_p_threshold(work, n, target) : *std::max_element(work, work + n);
    }
  }

  double total = 0.0;
  for (int32_t i = 0; i < vocab_size; i++)
    if (e[i] >= t) total += e[i];
  const double target = double(p.uniform) * total;
  double running = 0.0;
  int32_t last = argmax;
  for (int32_t i = 0; i < vocab_size; i++) {
    if (!(e[i] >= t && e[i] > 0.0f)) continue;
    running += e[i];
    last = i;
    if (running > target) return i;
  }
  return last;  // the running mass never exceeded the target (rounding, or a uniform >= 1)
}

}  // namespace

extern "C" {

vt_status vt_sample(vt_context* ctx, const void* logits, int32_t num_rows, int32_t vocab_size, vt_dtype act_dtype,
                    const float* temperatures, const int32_t* top_k, const float* top_p, const float* min_p,
                    const float* uniforms, int32_t* out) {
  const char* op = "vt_sample";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_act_dtype(op, act_dtype));
  VT_TRY(vt::check_sample_args(op, logits, out, num_rows, vocab_size, temperatures, top_k, top_p, min_p, uniforms));
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_sample, logits, num_rows, vocab_size, act_dtype, temperatures, top_k, top_p, min_p,
                         uniforms, out);
  if (num_rows == 0) return vt::ok();

  const int threads = std::min(vt::threads_for(ctx, size_t(num_rows) * vocab_size), int(num_rows));
  std::vector<float> scratch;
  try {
    scratch.resize(size_t(threads) * 2 * vocab_size);
  } catch (const std::bad_alloc&) {
    return vt::fail(VT_ERR_OUT_OF_MEMORY, std::string(op) + ": no memory for the scratch rows");
  }
  auto* x = static_cast<const float*>(logits);
#pragma omp parallel num_threads(threads)
  {
    float* e = scratch.data() + size_t(omp_get_thread_num()) * 2 * vocab_size;
    float* work = e + vocab_size;
#pragma omp for schedule(dynamic, 1)
    for (int32_t r = 0; r < num_rows; r++) {
      const RowParams p{temperatures[r], top_p[r], min_p[r], uniforms[r], top_k[r]};
      out[r] = sample_row(x + size_t(r) * vocab_size, vocab_size, p, e, work);
    }
  }
  return vt::ok();
}

}  // extern "C"
