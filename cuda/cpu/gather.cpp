// Row gather by index (e.g. the last token of each sequence before the LM head).
#include <cstring>
#include <string>

#include "checks.h"
#include "common.h"
#include "op.h"

extern "C" {

// Memory-bound; a thread owns whole destination rows.
vt_status vt_gather_rows(vt_context* ctx, void* dst, const void* src, const int32_t* indices, int32_t num_rows,
                         size_t row_bytes) {
  const char* op = "vt_gather_rows";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_gather_rows_args(op, dst, src, indices, num_rows));
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_gather_rows, dst, src, indices, num_rows, row_bytes);
  for (int32_t i = 0; i < num_rows; i++)
    VT_REQUIRE(indices[i] >= 0, op, "indices[" + std::to_string(i) + "] is negative");
  auto* d = static_cast<char*>(dst);
  auto* s = static_cast<const char*>(src);
#pragma omp parallel for num_threads(vt::threads_for(ctx, size_t(num_rows) * row_bytes / 4)) schedule(static)
  for (int32_t i = 0; i < num_rows; i++)
    std::memcpy(d + size_t(i) * row_bytes, s + size_t(indices[i]) * row_bytes, row_bytes);
  return vt::ok();
}

}  // extern "C"
