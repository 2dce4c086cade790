// What both native backends share about errors and dtypes: vt_last_error's message, the
// argument-check macros every op starts with, and dtype names and sizes.
#pragma once

#include <cstddef>
#include <string>

#include "vllm_ts.h"

namespace vt {

// Records the message for vt_last_error() and returns `status`, so call sites read
// `return fail(VT_ERR_INVALID_ARGUMENT, "...")`.
vt_status fail(vt_status status, const std::string& message);
vt_status ok();

inline bool valid_dtype(vt_dtype d) { return d == VT_F32 || d == VT_F16 || d == VT_BF16; }
inline size_t dtype_bytes(vt_dtype d) { return d == VT_F32 ? 4 : 2; }

inline const char* dtype_name(vt_dtype d) {
  return d == VT_F32 ? "f32" : d == VT_F16 ? "f16" : d == VT_BF16 ? "bf16" : "unknown";
}

// A storage dtype (weights, KV cache): any of the three.
inline vt_status check_storage_dtype(const char* op, const char* what, vt_dtype d) {
  if (valid_dtype(d)) return VT_OK;
  return fail(VT_ERR_INVALID_ARGUMENT, std::string(op) + ": unknown " + what + " " + std::to_string(int(d)));
}

}  // namespace vt

// Argument checks shared by every op: they return early with a message naming the op.
#define VT_REQUIRE(cond, op, what)                                                          \
  do {                                                                                      \
    if (!(cond)) return vt::fail(VT_ERR_INVALID_ARGUMENT, std::string(op) + ": " + (what)); \
  } while (0)

// Returns from the calling op when `expr` yields an error status.
#define VT_TRY(expr)                      \
  do {                                    \
    vt_status status_ = (expr);           \
    if (status_ != VT_OK) return status_; \
  } while (0)
