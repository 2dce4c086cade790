// The library, its error reporting and the CPU "device": a context is only a thread count, the
// device is the host, and its memory figures come from the kernel (bounded by a cgroup limit).
#include <omp.h>

#include <cstdio>
#include <fstream>
#include <new>
#include <string>
#include <system_error>

#include "common.h"
#include "cpu_topology.h"
#include "graph.h"
#include "meminfo.h"
#include "stream.h"

namespace {

// The memory limit of this process's cgroup minus what the group already uses (v2, else v1): in
// a container the host's figures overstate what may be allocated before the OOM killer steps in.
bool cgroup_room(size_t* limit_bytes, size_t* free_bytes) {
  const char* files[][2] = {
      {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"},
      {"/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"},
  };
  for (const auto& [limit_file, usage_file] : files) {
    std::ifstream limit_stream(limit_file), usage_stream(usage_file);
    size_t limit = 0, usage = 0;
    if (!(limit_stream >> limit) || !(usage_stream >> usage)) continue;  // absent, or "max" (no limit)
    *limit_bytes = limit;
    *free_bytes = limit > usage ? limit - usage : 0;
    return true;
  }
  return false;
}

std::string cpu_model_name() {
  std::ifstream file("/proc/cpuinfo");
  std::string line;
  while (std::getline(file, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    size_t colon = line.find(':');
    if (colon == std::string::npos) break;
    size_t start = line.find_first_not_of(" \t", colon + 1);
    return start == std::string::npos ? "CPU" : line.substr(start);
  }
  return "CPU";
}

}  // namespace

extern "C" {

int32_t vt_abi_version(void) { return VT_ABI_VERSION; }

const char* vt_backend_name(void) { return "cpu"; }

vt_status vt_device_count(int32_t* out_count) {
  VT_REQUIRE(out_count, "vt_device_count", "out_count is NULL");
  *out_count = 1;
  return vt::ok();
}

vt_status vt_context_create(int32_t device_index, int32_t num_threads, vt_context** out) {
  (void)device_index;  // one CPU "device"
  VT_REQUIRE(out, "vt_context_create", "out is NULL");
  *out = nullptr;
  VT_REQUIRE(num_threads >= 0, "vt_context_create",
             "num_threads must be >= 0 (0 = all cores), got " + std::to_string(num_threads));
  vt_context* ctx = new (std::nothrow) vt_context;
  if (!ctx) return vt::fail(VT_ERR_OUT_OF_MEMORY, "vt_context_create: out of host memory");
  const std::vector<int> cpus = vt::cpu::one_cpu_per_core();
  ctx->num_threads = num_threads > 0 ? num_threads : int(cpus.size());
  vt::cpu::pin_workers(ctx->num_threads, cpus);
  if (ctx->num_threads > 1 && cpus.size() > 1) ctx->caller_cpu = cpus[0];
  *out = ctx;
  return vt::ok();
}

vt_status vt_context_destroy(vt_context* ctx) {
  VT_REQUIRE(ctx, "vt_context_destroy", "ctx is NULL");
  delete ctx->stream;   // runs what is queued first
  delete ctx->capture;  // a capture never ended
  delete ctx;
  return vt::ok();
}

// The matmul is the one op whose order of operations depends on its row count (vt_matmul's packed
// path from 32 rows); attention and the row-wise ops compute each row alike at any batch.
vt_status vt_context_set_batch_invariant(vt_context* ctx, int32_t enabled) {
  VT_REQUIRE(ctx, "vt_context_set_batch_invariant", "ctx is NULL");
  VT_TRY(vt::cpu::wait_for_stream(ctx));  // queued ops read it
  ctx->batch_invariant = enabled != 0;
  return vt::ok();
}

// Only one thread leads OpenMP teams at a time (this one, or the stream's): libgomp counts every
// worker it keeps, and with more of them than CPUs its barriers sleep instead of spinning, which
// measured 1.4x slower on a decode step. So the workers of the thread that stops leading go.
vt_status vt_context_set_async(vt_context* ctx, int32_t enabled) {
  const char* op = "vt_context_set_async";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::cpu::refuse_while_capturing(ctx, op));
  VT_TRY(vt::cpu::wait_for_stream(ctx));
  if ((enabled != 0) == (ctx->stream != nullptr)) return vt::ok();
  if (enabled == 0) {
    delete ctx->stream;  // its thread ends, and its workers with it
    ctx->stream = nullptr;
    vt::cpu::pin_workers(ctx->num_threads, vt::cpu::one_cpu_per_core());
    return vt::ok();
  }
  omp_pause_resource_all(omp_pause_soft);  // this thread's workers end
  try {
    ctx->stream = new vt::cpu::Stream(ctx->num_threads, ctx->caller_cpu);
  } catch (const std::exception& e) {  // std::bad_alloc, or std::system_error: no thread
    return vt::fail(VT_ERR_DEVICE, std::string(op) + ": cannot start the stream's thread: " + e.what());
  }
  return vt::ok();
}

// Without a stream every CPU op has run before it returned.
vt_status vt_synchronize(vt_context* ctx) {
  VT_REQUIRE(ctx, "vt_synchronize", "ctx is NULL");
  VT_TRY(vt::cpu::refuse_while_capturing(ctx, "vt_synchronize"));
  return vt::cpu::wait_for_stream(ctx);
}

vt_status vt_memory_info(vt_context* ctx, size_t* free_bytes, size_t* total_bytes) {
  VT_REQUIRE(ctx, "vt_memory_info", "ctx is NULL");
  size_t total = vt::meminfo_bytes("MemTotal");
  size_t available = vt::meminfo_bytes("MemAvailable");
  if (total == 0) return vt::fail(VT_ERR_DEVICE, "vt_memory_info: cannot read /proc/meminfo");
  size_t limit, room;
  if (cgroup_room(&limit, &room)) {
    if (limit < total) total = limit;
    if (room < available) available = room;
  }
  if (free_bytes) *free_bytes = available;
  if (total_bytes) *total_bytes = total;
  return vt::ok();
}

vt_status vt_device_name(vt_context* ctx, char* buffer, size_t buffer_bytes) {
  VT_REQUIRE(ctx, "vt_device_name", "ctx is NULL");
  VT_REQUIRE(buffer && buffer_bytes > 0, "vt_device_name", "buffer is NULL or empty");
  std::snprintf(buffer, buffer_bytes, "%s (%d threads)", cpu_model_name().c_str(), ctx->num_threads);
  return vt::ok();
}

}  // extern "C"
