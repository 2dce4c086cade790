// sched_getaffinity for the allowed CPUs, sysfs for which of them share a core.
#include "cpu_topology.h"

#include <omp.h>
#include <pthread.h>
#include <sched.h>

#include <fstream>
#include <map>
#include <string>

namespace vt::cpu {

namespace {

// The first CPU of a sysfs cpulist such as "0-1" or "3,7"; -1 when unreadable.
int first_sibling(int cpu) {
  std::ifstream file("/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/thread_siblings_list");
  int first = -1;
  if (!(file >> first)) return -1;
  return first;
}

}  // namespace

std::vector<int> one_cpu_per_core() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
    for (int cpu = 0; cpu < omp_get_num_procs(); cpu++) cpus.push_back(cpu);
    return cpus;
  }
  std::map<int, int> cpu_of_core;  // first sibling -> lowest allowed CPU of that core
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    int core = first_sibling(cpu);
    cpu_of_core.emplace(core < 0 ? cpu : core, cpu);  // no sysfs: every CPU its own core
  }
  for (const auto& [core, cpu] : cpu_of_core) cpus.push_back(cpu);
  if (cpus.empty()) cpus.push_back(0);
  return cpus;
}

void pin_this_thread(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);  // best effort: a failure only costs speed
}

void pin_workers(int num_threads, const std::vector<int>& cpus) {
  if (num_threads < 2 || cpus.size() < 2) return;
#pragma omp parallel num_threads(num_threads)
  {
    int t = omp_get_thread_num();
    if (t > 0) pin_this_thread(cpus[size_t(t) % cpus.size()]);
  }
}

CallerPin::CallerPin(int cpu) {
  if (cpu < 0 || sched_getaffinity(0, sizeof saved_, &saved_) != 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pinned_ = sched_setaffinity(0, sizeof set, &set) == 0;
}

CallerPin::~CallerPin() {
  if (pinned_) sched_setaffinity(0, sizeof saved_, &saved_);
}

}  // namespace vt::cpu
