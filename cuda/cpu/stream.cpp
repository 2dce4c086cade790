// The CPU stream (stream.h): one thread, a queue of calls, and the first failure kept for drain().
#include "stream.h"

#include <new>

#include "common.h"
#include "cpu_topology.h"
#include "status.h"

namespace vt::cpu {
namespace {
thread_local bool is_stream_thread = false;
}  // namespace

Stream::Stream(int num_threads, int cpu) : thread_([this, num_threads, cpu] { serve(num_threads, cpu); }) {}

Stream::~Stream() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_one();
  thread_.join();
}

bool Stream::on_stream_thread() { return is_stream_thread; }

vt_status Stream::enqueue(std::function<vt_status()> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    try {
      jobs_.push_back(std::move(job));
    } catch (const std::bad_alloc&) {
      return fail(VT_ERR_OUT_OF_MEMORY, "the CPU stream: out of host memory queueing an op");
    }
  }
  work_ready_.notify_one();
  return ok();
}

vt_status Stream::drain() {
  if (is_stream_thread) return ok();  // a queued job's own call: what came before it has run
  std::unique_lock<std::mutex> lock(mutex_);
  idle_.wait(lock, [this] { return jobs_.empty() && !running_job_; });
  vt_status failure = failure_;
  std::string message = std::move(failure_message_);
  failure_ = VT_OK;
  failure_message_.clear();
  return failure == VT_OK ? ok() : fail(failure, message);
}

vt_status Stream::run_and_wait(std::function<vt_status()> job) {
  VT_TRY(enqueue(std::move(job)));
  return drain();
}

void Stream::serve(int num_threads, int cpu) {
  is_stream_thread = true;
  // This thread leads OpenMP teams of its own, whose workers are new threads: pin them as the
  // context's, before this thread's own pin narrows the CPUs one_cpu_per_core() sees.
  pin_workers(num_threads, one_cpu_per_core());
  if (cpu >= 0) pin_this_thread(cpu);
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    work_ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, with nothing left
    std::function<vt_status()> job = std::move(jobs_.front());
    jobs_.pop_front();
    running_job_ = true;
    bool skip = failure_ != VT_OK;
    lock.unlock();
    vt_status status = skip ? VT_OK : job();
    std::string message = status == VT_OK ? std::string() : std::string(vt_last_error());
    lock.lock();
    running_job_ = false;
    if (status != VT_OK) {
      failure_ = status;
      failure_message_ = std::move(message);
    }
    if (jobs_.empty()) idle_.notify_all();
  }
}

bool queued_elsewhere(const vt_context* ctx) { return ctx->stream != nullptr && !Stream::on_stream_thread(); }

vt_status wait_for_stream(vt_context* ctx) { return queued_elsewhere(ctx) ? ctx->stream->drain() : VT_OK; }

}  // namespace vt::cpu
