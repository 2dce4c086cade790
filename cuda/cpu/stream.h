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

  // Whether the calling thread is this stream's: a queued op runs there, not queued again.
  static bool on_stream_thread();

 private:
  void run(int num_threads, int cpu);

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

}  // namespace vt::cpu
