// Grammar-constrained decoding: the token bitmask of structured outputs applied to rows of logits.
#include <algorithm>
#include <cmath>
#include <string>

#include "checks.h"
#include "common.h"
#include "op.h"

namespace {

// Tokens per unit of parallel work: a few long rows (one per constrained request) still spread
// over every thread, and a unit is a whole number of mask words.
constexpr int32_t kChunkTokens = 4096;

}  // namespace

extern "C" {

// Memory-bound: it reads the mask (one bit per token) and writes only the entries it masks, never
// reading the logits. A thread owns a chunk of one masked row; within it, each 32-bit word's
// disallowed tokens are stored as masked vector stores. A row listed twice may be masked by two
// threads at once, which is harmless: both only store -inf.
vt_status vt_apply_token_bitmask(vt_context* ctx, void* logits, int32_t num_rows, int32_t vocab_size,
                                 vt_dtype act_dtype, const int32_t* bitmask, int32_t words_per_row,
                                 const int32_t* row_indices, int32_t num_masked_rows) {
  const char* op = "vt_apply_token_bitmask";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_act_dtype(op, act_dtype));
  VT_TRY(vt::check_apply_token_bitmask_args(op, logits, num_rows, vocab_size, bitmask, words_per_row, row_indices,
                                            num_masked_rows));
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_apply_token_bitmask, logits, num_rows, vocab_size, act_dtype, bitmask, words_per_row,
                         row_indices, num_masked_rows);
  if (num_masked_rows == 0) return vt::ok();
  for (int32_t i = 0; i < num_masked_rows; i++)
    VT_REQUIRE(row_indices[i] >= 0 && row_indices[i] < num_rows, op,
               "row_indices[" + std::to_string(i) + "] = " + std::to_string(row_indices[i]) +
                   " is outside [0, num_rows = " + std::to_string(num_rows) + ")");
  auto* x = static_cast<float*>(logits);
  const int32_t num_chunks = (vocab_size + kChunkTokens - 1) / kChunkTokens;
#pragma omp parallel for collapse(2) num_threads(vt::threads_for(ctx, size_t(num_masked_rows) * vocab_size)) \
    schedule(static)
  for (int32_t i = 0; i < num_masked_rows; i++) {
    for (int32_t chunk = 0; chunk < num_chunks; chunk++) {
      float* row = x + size_t(row_indices[i]) * vocab_size;
      const auto* words = reinterpret_cast<const uint32_t*>(bitmask) + size_t(i) * words_per_row;
      const int32_t end = std::min(vocab_size, (chunk + 1) * kChunkTokens);
      for (int32_t start = chunk * kChunkTokens; start < end; start += 32) {
        const uint32_t word = words[start / 32];
        float* tokens = row + start;
        const int32_t n = std::min(32, end - start);
#pragma omp simd
        for (int32_t b = 0; b < n; b++)
          if (!((word >> b) & 1u)) tokens[b] = -INFINITY;
      }
    }
  }
  return vt::ok();
}

}  // extern "C"
