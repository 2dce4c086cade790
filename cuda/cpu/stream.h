// The CPU backend's stream (vt_context_set_async): a thread of the context's own that runs its ops
// in the order they were called, as a CUDA stream does. An op (or a graph's replay) called from
// another thread is checked there and queued, and the call returns at once, so the engine's thread
// schedules the next step while this one computes. Calls that read or free memory the queued ops
// may use (host copies, vt_free, vt_synchronize, ...) drain the queue first; a queued op's failure
// is what the first of them returns, as CUDA reports an asynchronous error at the next
// synchronization.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "vllm_ts.h"

namespace vt::cpu {

class Stream {
 public:
  // Starts the thread: it pins itself to `cpu` (-1: not pinned) and its OpenMP workers as
  // vt_context_create pins the caller's.
  Stream(int num_threads, int cpu);
  // Runs what is queued, then stops the thread.
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Queues `job`. Once a job fails, the jobs queued after it are dropped until drain() reports it.
  vt_status enqueue(std::function<vt_status()> job);

  // Waits until every queued job has run; returns the first failure among them, with its message
  // for the calling thread's vt_last_error, and forgets it.
  vt_status drain();

  // Queues `job` and waits for it (drain()).
  vt_status run_and_wait(std::function<vt_status()> job);

  // Whether the calling thread is this stream's: a queued op runs there, not queued again.
  static bool on_stream_thread();

 private:
  // The thread's loop.
  void serve(int num_threads, int cpu);

  std::mutex mutex_;
  std::condition_variable work_ready_;  // the thread waits for jobs (or for stopping)
  std::condition_variable idle_;        // drain() waits for the queue to empty
  std::deque<std::function<vt_status()>> jobs_;
  bool running_job_ = false;
  bool stopping_ = false;
  vt_status failure_ = VT_OK;
  std::string failure_message_;
  std::thread thread_;
};

// Whether a call on this thread goes to ctx's stream rather than running here.
bool queued_elsewhere(const vt_context* ctx);

// With a stream, waits for the queued ops and returns their first failure; without one, VT_OK.
vt_status wait_for_stream(vt_context* ctx);

}  // namespace vt::cpu

// Placed in a call that is not an op (host copies, repacking), after its checks: with a stream, the
// call runs there, after the queued ops, and returns when it is done, so its parallel work reuses
// that thread's OpenMP workers (two sets of workers on the same cores would make libgomp's
// barriers sleep instead of spin).
#define VT_RUN_ON_STREAM_AND_WAIT(ctx, fn, ...)                                                                     \
  do {                                                                                                              \
    if (vt::cpu::queued_elsewhere(ctx)) return (ctx)->stream->run_and_wait([=] { return fn((ctx), __VA_ARGS__); }); \
  } while (0)
