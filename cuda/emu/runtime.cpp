// The CUDA runtime API in the emulation: device memory is host memory, streams run their work at
// once, and a stream being captured records its work into a graph instead (replayed by
// cudaGraphLaunch). Calls CUDA forbids during a capture (allocation, synchronous copies,
// synchronization) fail with cudaErrorStreamCaptureUnsupported and invalidate the capture, as
// they do on a GPU, so capture mistakes show in the tests.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda_emu.h"
#include "meminfo.h"

namespace emu {

void run_grid(const Launch& launch, const std::function<void()>& thread_body);

struct Graph {
  std::vector<std::function<void()>> work;
};

struct GraphExec {
  std::vector<std::function<void()>> work;
};

struct Stream {
  bool capturing = false;
  bool invalidated = false;
  Graph* graph = nullptr;
};

namespace {

thread_local cudaError_t last_error = cudaSuccess;
// Streams being captured (global capture mode: any synchronous call anywhere breaks them).
std::vector<Stream*> capturing_streams;
Stream default_stream;

cudaError_t record_error(cudaError_t error) {
  if (error != cudaSuccess) last_error = error;
  return error;
}

// A call that may not happen while any stream is capturing: invalidates those captures.
cudaError_t forbidden_during_capture() {
  if (capturing_streams.empty()) return cudaSuccess;
  for (Stream* s : capturing_streams) s->invalidated = true;
  return record_error(cudaErrorStreamCaptureUnsupported);
}

Stream* resolve(cudaStream_t stream) { return stream ? stream : &default_stream; }

// Runs `work` now, or appends it to the stream's graph while capturing.
cudaError_t submit(cudaStream_t stream, std::function<void()> work) {
  Stream* s = resolve(stream);
  if (s->capturing) {
    if (s->invalidated) return record_error(cudaErrorStreamCaptureInvalidated);
    s->graph->work.push_back(std::move(work));
    return cudaSuccess;
  }
  work();
  return cudaSuccess;
}

std::mutex opt_in_mutex;
std::unordered_map<const void*, size_t> opt_in_shared;  // kernel -> its cudaFuncSetAttribute value

bool shared_memory_allowed(const Launch& launch) {
  if (launch.shared_bytes <= kDefaultSharedBytes) return true;
  std::lock_guard<std::mutex> lock(opt_in_mutex);
  auto found = opt_in_shared.find(launch.kernel);
  return found != opt_in_shared.end() && launch.shared_bytes <= found->second;
}

bool valid_launch(const Launch& launch) {
  const dim3& g = launch.grid;
  const dim3& b = launch.block;
  return g.x >= 1 && g.y >= 1 && g.z >= 1 && g.y <= 65535 && g.z <= 65535 && b.x >= 1 && b.y >= 1 && b.z >= 1 &&
         b.z <= 64 && size_t(b.x) * b.y * b.z <= size_t(kMaxThreadsPerBlock) && launch.shared_bytes <= kMaxSharedBytes;
}

}  // namespace

void set_max_dynamic_shared(const void* kernel, size_t bytes) {
  std::lock_guard<std::mutex> lock(opt_in_mutex);
  opt_in_shared[kernel] = bytes;
}

void enqueue_launch(Stream* stream, const Launch& launch, std::function<void()> thread_body) {
  if (!valid_launch(launch)) {
    record_error(cudaErrorInvalidConfiguration);
    return;
  }
  if (!shared_memory_allowed(launch)) {
    record_error(cudaErrorLaunchOutOfResources);
    return;
  }
  submit(stream, [launch, body = std::move(thread_body)]() { run_grid(launch, body); });
}

}  // namespace emu

using emu::record_error;

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    case cudaErrorLaunchOutOfResources:
      return "too many resources requested for launch";
    case cudaErrorNoDevice:
      return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice:
      return "invalid device ordinal";
    case cudaErrorStreamCaptureUnsupported:
      return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated:
      return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureUnmatched:
      return "the capture was not initiated in this stream";
  }
  return "unknown error";
}

cudaError_t cudaGetLastError() {
  cudaError_t error = emu::last_error;
  emu::last_error = cudaSuccess;
  return error;
}

cudaError_t cudaPeekAtLastError() { return emu::last_error; }

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : record_error(cudaErrorInvalidDevice); }

cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return record_error(cudaErrorInvalidDevice);
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "CUDA emulation on the CPU (%d threads)", omp_get_max_threads());
  prop->totalGlobalMem = vt::meminfo_bytes("MemTotal");
  prop->sharedMemPerBlock = 48 * 1024;
  prop->sharedMemPerBlockOptin = emu::kMaxSharedBytes;
  prop->warpSize = emu::kWarpSize;
  prop->maxThreadsPerBlock = emu::kMaxThreadsPerBlock;
  prop->multiProcessorCount = omp_get_max_threads();
  prop->major = 9;
  prop->minor = 0;
  prop->l2CacheSize = 50 * 1024 * 1024;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  cudaDeviceProp prop;
  if (cudaError_t error = cudaGetDeviceProperties(&prop, device)) return error;
  switch (attr) {
    case cudaDevAttrMaxSharedMemoryPerBlockOptin:
      *value = int(prop.sharedMemPerBlockOptin);
      return cudaSuccess;
    case cudaDevAttrMultiProcessorCount:
      *value = prop.multiProcessorCount;
      return cudaSuccess;
  }
  return record_error(cudaErrorInvalidValue);
}

cudaError_t cudaDeviceSynchronize() { return emu::forbidden_during_capture(); }

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  *free_bytes = vt::meminfo_bytes("MemAvailable");
  *total_bytes = vt::meminfo_bytes("MemTotal");
  return cudaSuccess;
}

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  *ptr = nullptr;
  if (cudaError_t error = emu::forbidden_during_capture()) return error;
  // The exact size (not rounded up), so that an address sanitizer build sees any overrun.
  if (posix_memalign(ptr, 256, bytes == 0 ? 1 : bytes) != 0) {
    *ptr = nullptr;
    return record_error(cudaErrorMemoryAllocation);
  }
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (cudaError_t error = emu::forbidden_during_capture()) return error;
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) { return cudaMalloc(ptr, bytes); }
cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned) { return cudaMalloc(ptr, bytes); }
cudaError_t cudaFreeHost(void* ptr) { return cudaFree(ptr); }

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (cudaError_t error = emu::forbidden_during_capture()) return error;
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind, cudaStream_t stream) {
  return emu::submit(stream, [=]() { std::memmove(dst, src, bytes); });
}

cudaError_t cudaMemcpy2DAsync(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width,
                              size_t height, cudaMemcpyKind, cudaStream_t stream) {
  if (width > dst_pitch || width > src_pitch) return record_error(cudaErrorInvalidValue);
  return emu::submit(stream, [=]() {
    for (size_t row = 0; row < height; row++)
      std::memmove(static_cast<char*>(dst) + row * dst_pitch, static_cast<const char*>(src) + row * src_pitch, width);
  });
}

cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
  if (cudaError_t error = emu::forbidden_during_capture()) return error;
  std::memset(ptr, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream) {
  return emu::submit(stream, [=]() { std::memset(ptr, value, bytes); });
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  *stream = new emu::Stream();
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t) { return emu::forbidden_during_capture(); }

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode) {
  emu::Stream* s = emu::resolve(stream);
  if (s->capturing || s == &emu::default_stream) return record_error(cudaErrorStreamCaptureUnsupported);
  s->capturing = true;
  s->invalidated = false;
  s->graph = new emu::Graph();
  emu::capturing_streams.push_back(s);
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  emu::Stream* s = emu::resolve(stream);
  *graph = nullptr;
  if (!s->capturing) return record_error(cudaErrorStreamCaptureUnmatched);
  s->capturing = false;
  auto& streams = emu::capturing_streams;
  streams.erase(std::remove(streams.begin(), streams.end(), s), streams.end());
  if (s->invalidated) {
    delete s->graph;
    s->graph = nullptr;
    return record_error(cudaErrorStreamCaptureInvalidated);
  }
  *graph = s->graph;
  s->graph = nullptr;
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  emu::Stream* s = emu::resolve(stream);
  *status = !s->capturing    ? cudaStreamCaptureStatusNone
            : s->invalidated ? cudaStreamCaptureStatusInvalidated
                             : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  if (!graph) return record_error(cudaErrorInvalidValue);
  *exec = new emu::GraphExec{graph->work};
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  if (!exec) return record_error(cudaErrorInvalidValue);
  return emu::submit(stream, [exec]() {
    for (auto& work : exec->work) work();
  });
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
