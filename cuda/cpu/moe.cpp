// Mixture of experts on the CPU: routing and combining are row-wise loops; the experts' matmuls
// gather each expert's rows and run vt_matmul on them, so an expert's weights are read once per
// call and every weight format vt_matmul knows works here too.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "checks.h"
#include "common.h"
#include "op.h"
#include "quant.h"

namespace {

// The index arrays are read on the host, so their consistency is checked instead of trusted.
vt_status check_groups(const char* op, const int32_t* sorted_slots, const int32_t* offsets, int32_t num_slots,
                       int32_t num_experts) {
  VT_REQUIRE(offsets[0] == 0 && offsets[num_experts] == num_slots, op,
             "expert_offsets must start at 0 and end at num_slots (" + std::to_string(num_slots) + ")");
  for (int32_t e = 0; e < num_experts; e++)
    VT_REQUIRE(offsets[e] <= offsets[e + 1], op, "expert_offsets decrease at expert " + std::to_string(e));
  for (int32_t i = 0; i < num_slots; i++)
    VT_REQUIRE(sorted_slots[i] >= 0 && sorted_slots[i] < num_slots, op,
               "sorted_slots[" + std::to_string(i) + "] is out of range");
  return VT_OK;
}

}  // namespace

extern "C" {

// A thread owns whole tokens: the top_k are picked by repeated arg-max over the logits (the order
// of the probabilities), the first of equals winning.
vt_status vt_moe_route(vt_context* ctx, const void* logits, int32_t num_tokens, int32_t num_experts, int32_t top_k,
                       int32_t renormalize, vt_dtype act_dtype, int32_t* expert_ids, float* weights) {
  const char* op = "vt_moe_route";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_act_dtype(op, act_dtype));
  VT_TRY(vt::check_moe_route_args(op, logits, num_tokens, num_experts, top_k, expert_ids, weights));
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_moe_route, logits, num_tokens, num_experts, top_k, renormalize, act_dtype, expert_ids,
                         weights);
  const auto* all = static_cast<const float*>(logits);
#pragma omp parallel for num_threads(vt::threads_for(ctx, size_t(num_tokens) * num_experts)) schedule(static)
  for (int32_t t = 0; t < num_tokens; t++) {
    const float* row = all + size_t(t) * num_experts;
    const float max = vt::max_of(row, num_experts);
    double sum = 0;
    for (int32_t e = 0; e < num_experts; e++) sum += std::exp(double(row[e]) - max);
    bool taken[vt::kMoeMaxExperts] = {};
    int32_t* ids = expert_ids + size_t(t) * top_k;
    float* w = weights + size_t(t) * top_k;
    double chosen = 0;
    for (int32_t j = 0; j < top_k; j++) {
      int32_t best = -1;
      for (int32_t e = 0; e < num_experts; e++)
        if (!taken[e] && (best < 0 || row[e] > row[best])) best = e;
      taken[best] = true;
      const double p = std::exp(double(row[best]) - max) / sum;
      ids[j] = best;
      w[j] = float(p);
      chosen += p;
    }
    if (renormalize)
      for (int32_t j = 0; j < top_k; j++) w[j] = float(w[j] / chosen);
  }
  return vt::ok();
}

// A counting sort: a few thousand slots at most per step, one pass each way.
vt_status vt_moe_group(vt_context* ctx, const int32_t* expert_ids, int32_t num_slots, int32_t num_experts,
                       int32_t* sorted_slots, int32_t* expert_offsets) {
  const char* op = "vt_moe_group";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_moe_group_args(op, expert_ids, num_slots, num_experts, sorted_slots, expert_offsets));
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_moe_group, expert_ids, num_slots, num_experts, sorted_slots, expert_offsets);
  for (int32_t s = 0; s < num_slots; s++)
    VT_REQUIRE(expert_ids[s] >= 0 && expert_ids[s] < num_experts, op,
               "expert_ids[" + std::to_string(s) + "] is not an expert");
  std::fill_n(expert_offsets, num_experts + 1, 0);
  for (int32_t s = 0; s < num_slots; s++) expert_offsets[expert_ids[s] + 1]++;
  for (int32_t e = 0; e < num_experts; e++) expert_offsets[e + 1] += expert_offsets[e];
  std::vector<int32_t> next(expert_offsets, expert_offsets + num_experts);
  for (int32_t s = 0; s < num_slots; s++) sorted_slots[next[expert_ids[s]]++] = s;
  return vt::ok();
}

vt_status vt_moe_matmul(vt_context* ctx, const void* x, int32_t slots_per_x_row, const void* w,
                        const int32_t* sorted_slots, const int32_t* expert_offsets, void* out, int32_t num_slots,
                        int32_t num_experts, int32_t n, int32_t k, vt_dtype act_dtype, vt_dtype weight_dtype) {
  const char* op = "vt_moe_matmul";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_act_dtype(op, act_dtype));
  VT_TRY(vt::check_moe_matmul_args(op, x, slots_per_x_row, w, sorted_slots, expert_offsets, out, num_slots, num_experts,
                                   n, k, weight_dtype));
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_moe_matmul, x, slots_per_x_row, w, sorted_slots, expert_offsets, out, num_slots,
                         num_experts, n, k, act_dtype, weight_dtype);
  if (num_slots == 0) return vt::ok();
  VT_TRY(check_groups(op, sorted_slots, expert_offsets, num_slots, num_experts));
  const auto* rows = static_cast<const float*>(x);
  auto* result = static_cast<float*>(out);
  const size_t expert_bytes = size_t(n) * vt::storage_bytes(weight_dtype, size_t(k));
  thread_local std::vector<float> gathered, products;
  for (int32_t e = 0; e < num_experts; e++) {
    const int32_t first = expert_offsets[e], count = expert_offsets[e + 1] - first;
    if (count == 0) continue;
    gathered.resize(size_t(count) * k);
    products.resize(size_t(count) * n);
    for (int32_t i = 0; i < count; i++) {
      const float* row = rows + size_t(sorted_slots[first + i] / slots_per_x_row) * k;
      std::copy_n(row, k, gathered.data() + size_t(i) * k);
    }
    const void* expert_w = static_cast<const char*>(w) + size_t(e) * expert_bytes;
    VT_TRY(vt_matmul(ctx, gathered.data(), expert_w, nullptr, products.data(), count, n, k, act_dtype, weight_dtype));
    for (int32_t i = 0; i < count; i++)
      std::copy_n(products.data() + size_t(i) * n, n, result + size_t(sorted_slots[first + i]) * n);
  }
  return vt::ok();
}

// Memory-bound; a thread owns whole tokens.
vt_status vt_moe_combine(vt_context* ctx, const void* x, const float* weights, const void* shared,
                         const void* shared_gate, void* out, int32_t num_tokens, int32_t top_k, int32_t d,
                         vt_dtype act_dtype) {
  const char* op = "vt_moe_combine";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_act_dtype(op, act_dtype));
  VT_TRY(vt::check_moe_combine_args(op, x, weights, shared, shared_gate, out, num_tokens, top_k, d));
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_moe_combine, x, weights, shared, shared_gate, out, num_tokens, top_k, d, act_dtype);
  const auto* in = static_cast<const float*>(x);
  const auto* shared_rows = static_cast<const float*>(shared);
  const auto* shared_logits = static_cast<const float*>(shared_gate);
  auto* y = static_cast<float*>(out);
#pragma omp parallel for num_threads(vt::threads_for(ctx, size_t(num_tokens) * (top_k + 1) * d)) schedule(static)
  for (int32_t t = 0; t < num_tokens; t++) {
    float* row = y + size_t(t) * d;
    std::fill_n(row, d, 0.0f);
    for (int32_t j = 0; j < top_k; j++) {
      const float weight = weights[size_t(t) * top_k + j];
      const float* slot = in + (size_t(t) * top_k + j) * d;
#pragma omp simd
      for (int32_t i = 0; i < d; i++) row[i] += weight * slot[i];
    }
    if (shared_rows == nullptr) continue;
    const float gate = 1.0f / (1.0f + std::exp(-shared_logits[t]));
    const float* shared_row = shared_rows + size_t(t) * d;
#pragma omp simd
    for (int32_t i = 0; i < d; i++) row[i] += gate * shared_row[i];
  }
  return vt::ok();
}

}  // extern "C"
