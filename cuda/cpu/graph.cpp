// Graphs on the CPU backend: ops run as they are called, so there is nothing to record; the
// model runner asks the backend first (Backend.supportsGraphs) and this answer is the fallback.
#include "common.h"

extern "C" {

vt_status vt_graph_begin_capture(vt_context* ctx) {
  VT_REQUIRE(ctx, "vt_graph_begin_capture", "ctx is NULL");
  return vt::fail(VT_ERR_UNSUPPORTED,
                  "vt_graph_begin_capture: the CPU backend runs ops as they are called (no graphs)");
}

vt_status vt_graph_end_capture(vt_context*, vt_graph**) {
  return vt::fail(VT_ERR_INVALID_ARGUMENT, "vt_graph_end_capture: no capture in progress");
}

vt_status vt_graph_launch(vt_context*, vt_graph*) {
  return vt::fail(VT_ERR_INVALID_ARGUMENT, "vt_graph_launch: the CPU backend has no graphs");
}

vt_status vt_graph_destroy(vt_context*, vt_graph*) {
  return vt::fail(VT_ERR_INVALID_ARGUMENT, "vt_graph_destroy: the CPU backend has no graphs");
}

}  // extern "C"
