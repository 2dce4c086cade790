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

struct vt_graph {
  std::vector<std::function<vt_status()>> ops;
};

namespace vt::cpu {

// Appends `call` to the graph being captured on ctx.
vt_status record(vt_context* ctx, std::function<vt_status()> call);

// What a graph cannot hold, as on CUDA: allocation, host copies, synchronization, repacking.
vt_status refuse_while_capturing(const vt_context* ctx, const char* op);

// Whether a call on this thread goes to ctx's stream (stream.h) rather than running here.
bool queued_elsewhere(const vt_context* ctx);

// Queues `job` on ctx's stream.
vt_status queue(vt_context* ctx, std::function<vt_status()> job);

// With a stream, waits for the queued ops and returns their first failure; without one, VT_OK.
vt_status wait_for_stream(vt_context* ctx);

// Queues `job` on ctx's stream and waits for it: a call that is not an op still runs on the
// stream's thread, so its parallel work reuses that thread's OpenMP workers (two sets of workers
// on the same cores would make libgomp's barriers sleep instead of spin).
vt_status run_on_stream(vt_context* ctx, std::function<vt_status()> job);

}  // namespace vt::cpu

// Placed after an op's argument checks, so a bad call fails at once (at capture, or when queued)
// as on CUDA. The op is then recorded into the graph being captured, or queued on the context's
// stream, or it runs here (on the stream's thread, a queued op runs).
#define VT_RECORD_QUEUE_OR_RUN(ctx, fn, ...)                                                                  \
  do {                                                                                                        \
    if ((ctx)->capture) return vt::cpu::record((ctx), [=] { return fn((ctx), __VA_ARGS__); });                \
    if (vt::cpu::queued_elsewhere(ctx)) return vt::cpu::queue((ctx), [=] { return fn((ctx), __VA_ARGS__); }); \
  } while (0)

// Placed in a call that is not an op (host copies, repacking), after its checks: with a stream, the
// call runs there, after the queued ops, and returns when it is done.
#define VT_RUN_ON_STREAM_AND_WAIT(ctx, fn, ...)                                                                       \
  do {                                                                                                                \
    if (vt::cpu::queued_elsewhere(ctx)) return vt::cpu::run_on_stream((ctx), [=] { return fn((ctx), __VA_ARGS__); }); \
  } while (0)
