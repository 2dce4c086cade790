// vt_graph_* on the CPU backend (graph.h): capture records the ops' calls, launch replays them.
#include "graph.h"

#include <new>
#include <string>

#include "cpu_topology.h"

namespace vt::cpu {

vt_status record(vt_context* ctx, std::function<vt_status()> call) {
  try {
    ctx->capture->ops.push_back(std::move(call));
  } catch (const std::bad_alloc&) {
    return fail(VT_ERR_OUT_OF_MEMORY, "graph capture: out of host memory");
  }
  return ok();
}

vt_status refuse_while_capturing(const vt_context* ctx, const char* op) {
  if (ctx->capture == nullptr) return VT_OK;
  return fail(VT_ERR_INVALID_ARGUMENT, std::string(op) + ": not allowed while a graph is being captured");
}

namespace {

// Stops at the first op that fails; its message is vt_last_error's.
vt_status replay(const vt_graph* graph) {
  for (const auto& call : graph->ops) VT_TRY(call());
  return ok();
}

}  // namespace

}  // namespace vt::cpu

extern "C" {

vt_status vt_graph_begin_capture(vt_context* ctx) {
  const char* op = "vt_graph_begin_capture";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_REQUIRE(ctx->capture == nullptr, op, "a graph is already being captured");
  VT_TRY(vt::cpu::wait_for_stream(ctx));  // a queued op reads ctx->capture when it runs
  ctx->capture = new (std::nothrow) vt_graph;
  if (!ctx->capture) return vt::fail(VT_ERR_OUT_OF_MEMORY, std::string(op) + ": out of host memory");
  return vt::ok();
}

vt_status vt_graph_end_capture(vt_context* ctx, vt_graph** out) {
  const char* op = "vt_graph_end_capture";
  VT_REQUIRE(ctx && out, op, "ctx or out is NULL");
  *out = nullptr;
  VT_REQUIRE(ctx->capture, op, "no capture in progress");
  *out = ctx->capture;
  ctx->capture = nullptr;
  return vt::ok();
}

vt_status vt_graph_launch(vt_context* ctx, vt_graph* graph) {
  const char* op = "vt_graph_launch";
  VT_REQUIRE(ctx && graph, op, "ctx or graph is NULL");
  VT_TRY(vt::cpu::refuse_while_capturing(ctx, op));
  if (vt::cpu::queued_elsewhere(ctx)) return ctx->stream->enqueue([graph] { return vt::cpu::replay(graph); });
  vt::cpu::CallerPin pin(ctx->caller_cpu);
  return vt::cpu::replay(graph);
}

vt_status vt_graph_destroy(vt_context* ctx, vt_graph* graph) {
  VT_REQUIRE(ctx && graph, "vt_graph_destroy", "ctx or graph is NULL");
  VT_TRY(vt::cpu::wait_for_stream(ctx));  // a queued replay may still read it
  delete graph;
  return vt::ok();
}

}  // extern "C"
