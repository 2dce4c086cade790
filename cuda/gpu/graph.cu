// Graphs: the ops a decode step enqueues, captured once per batch size and replayed, so a step
// costs one launch instead of hundreds (each FFI call plus kernel launch is several µs).
#include <new>
#include <string>

#include "common.cuh"

struct vt_graph {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
};

extern "C" {

vt_status vt_graph_begin_capture(vt_context* ctx) {
  const char* op = "vt_graph_begin_capture";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  // Thread-local mode: only unsafe calls made by this thread (the engine's) break the capture.
  VT_CUDA_TRY(cudaStreamBeginCapture(ctx->stream, cudaStreamCaptureModeThreadLocal), op);
  return vt::ok();
}

vt_status vt_graph_end_capture(vt_context* ctx, vt_graph** out) {
  const char* op = "vt_graph_end_capture";
  VT_REQUIRE(ctx && out, op, "ctx or out is NULL");
  *out = nullptr;
  cudaGraph_t graph = nullptr;
  VT_CUDA_TRY(cudaStreamEndCapture(ctx->stream, &graph), op);
  cudaGraphExec_t exec = nullptr;
  cudaError_t error = cudaGraphInstantiate(&exec, graph, 0);
  if (error != cudaSuccess) {
    cudaGraphDestroy(graph);
    return vt::gpu::cuda_fail(error, op);
  }
  *out = new (std::nothrow) vt_graph{graph, exec};
  if (!*out) {
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    return vt::fail(VT_ERR_OUT_OF_MEMORY, std::string(op) + ": out of host memory");
  }
  return vt::ok();
}

vt_status vt_graph_launch(vt_context* ctx, vt_graph* graph) {
  const char* op = "vt_graph_launch";
  VT_REQUIRE(ctx && graph, op, "ctx or graph is NULL");
  VT_CUDA_TRY(cudaGraphLaunch(graph->exec, ctx->stream), op);
  return vt::ok();
}

vt_status vt_graph_destroy(vt_context* ctx, vt_graph* graph) {
  const char* op = "vt_graph_destroy";
  VT_REQUIRE(ctx && graph, op, "ctx or graph is NULL");
  cudaError_t error = cudaGraphExecDestroy(graph->exec);
  if (error == cudaSuccess) error = cudaGraphDestroy(graph->graph);
  delete graph;
  return error == cudaSuccess ? vt::ok() : vt::gpu::cuda_fail(error, op);
}

}  // extern "C"
