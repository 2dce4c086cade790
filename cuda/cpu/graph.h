// Graphs on the CPU backend: between vt_graph_begin_capture and vt_graph_end_capture an op checks
// its arguments and then, instead of running, appends itself (the same call, its arguments copied)
// to the graph; vt_graph_launch replays the calls in order. A decode step then costs one FFI call
// instead of hundreds, and the OpenMP workers, which spin for a moment after each parallel region,
// go from one op's region to the next without sleeping in between. With a stream (stream.h) the
// replay is queued there like any op.
#pragma once

#include <functional>
#include <vector>

#include "common.h"
#include "stream.h"

struct vt_graph {
  std::vector<std::function<vt_status()>> ops;
};

namespace vt::cpu {

// Appends `call` to the graph being captured on ctx.
vt_status record(vt_context* ctx, std::function<vt_status()> call);

// What a graph cannot hold, as on CUDA: allocation, host copies, synchronization, repacking.
vt_status refuse_while_capturing(const vt_context* ctx, const char* op);

}  // namespace vt::cpu

// Placed after an op's argument checks, so a bad call fails at once (at capture, or when queued)
// as on CUDA. The op is then recorded into the graph being captured, or queued on the context's
// stream, or it runs here (on the stream's thread, a queued op runs).
#define VT_RECORD_QUEUE_OR_RUN(ctx, fn, ...)                                                                   \
  do {                                                                                                         \
    if ((ctx)->capture) return vt::cpu::record((ctx), [=] { return fn((ctx), __VA_ARGS__); });                 \
    if (vt::cpu::queued_elsewhere(ctx)) return (ctx)->stream->enqueue([=] { return fn((ctx), __VA_ARGS__); }); \
  } while (0)
