// vt_last_error and the helpers that set it, shared by both backends.
#include "status.h"

namespace {
// One message per calling thread, so concurrent callers never read each other's errors.
thread_local std::string last_error;
}  // namespace

namespace vt {

vt_status fail(vt_status status, const std::string& message) {
  last_error = message;
  return status;
}

vt_status ok() {
  last_error.clear();
  return VT_OK;
}

}  // namespace vt

extern "C" const char* vt_last_error(void) { return last_error.c_str(); }
