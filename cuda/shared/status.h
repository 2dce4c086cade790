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

// The unquantized dtypes (quant.h knows the quantized ones).
inline bool valid_dtype(vt_dtype d) { return d == VT_F32 || d == VT_F16 || d == VT_BF16; }
inline size_t dtype_bytes(vt_dtype d) { return d == VT_F32 ? 4 : 2; }

inline const char* dtype_name(vt_dtype d) {
  switch (d) {
    case VT_F32:
      return "f32";
    case VT_F16:
      return "f16";
    case VT_BF16:
      return "bf16";
    case VT_Q8_0:
      return "q8_0";
    case VT_Q4_0:
      return "q4_0";
    case VT_Q4_K:
      return "q4_k";
    case VT_Q5_K:
      return "q5_k";
    case VT_Q6_K:
      return "q6_k";
    case VT_Q4_1:
      return "q4_1";
    case VT_Q5_0:
      return "q5_0";
    case VT_Q5_1:
      return "q5_1";
  }
  return "unknown";
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
