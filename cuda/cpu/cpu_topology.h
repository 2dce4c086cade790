// Which logical CPUs this process may run on, one per physical core, and the pinning of the
// OpenMP workers to them: a decode step is bound by memory bandwidth, which two hyper-threads of
// one core share, so the default thread count is the number of physical cores.
#pragma once

#include <sched.h>

#include <vector>

namespace vt::cpu {

// One logical CPU of each physical core in this process's affinity mask (the lowest-numbered
// sibling), in ascending order; never empty.
std::vector<int> one_cpu_per_core();

// Pins the calling thread to `cpu` for good (CallerPin for a while).
void pin_this_thread(int cpu);

// Pins OpenMP thread t > 0 of a num_threads team to cpus[t % cpus.size()]. The calling thread
// (the engine's, or the context's stream thread: the one that runs thread 0 of every team) stays
// unpinned, and with as many threads as cores no worker is placed on cpus[0], which the scheduler
// leaves to it.
void pin_workers(int num_threads, const std::vector<int>& cpus);

// Pins the calling thread to `cpu` for its lifetime and then restores its affinity: a graph's
// replay keeps the engine's thread off the cores its spinning workers hold, and afterwards its
// mask is its own again (threads it starts later inherit that mask, not this pin).
class CallerPin {
 public:
  explicit CallerPin(int cpu);
  ~CallerPin();
  CallerPin(const CallerPin&) = delete;
  CallerPin& operator=(const CallerPin&) = delete;

 private:
  cpu_set_t saved_;
  bool pinned_ = false;
};

}  // namespace vt::cpu
