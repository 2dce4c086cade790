// A CPU emulation of the part of CUDA that the kernels of cuda/gpu/ use, so that g++ can build
// them into a library the tests run on machines without a GPU (CI has none).
//
// Execution model (see block.cpp): the blocks of a launch run in parallel on OpenMP threads; the
// threads of one block run as fibers on one OS thread, switching only at synchronization points
// (__syncthreads, warp shuffles and votes, __syncwarp, wmma loads and stores), so every
// interleaving a kernel can rely on under CUDA's rules also holds here. `__shared__` variables
// are thread_local statics: one copy per OS thread, i.e. per block in flight. Atomics are real
// atomics, since blocks do run concurrently. cp.async copies (pipeline.h) land when their thread
// waits for them, not when issued.
//
// The runtime API (runtime.cpp) runs work synchronously at enqueue, except while a stream is
// being captured: then launches, copies and memsets are recorded and a graph replays them. As in
// CUDA, synchronous calls during a capture fail and invalidate it, so the tests catch ops that
// are not capturable.
#pragma once

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "float16.h"

// ---- qualifiers --------------------------------------------------------------------------------

#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static thread_local

// ---- vector types ------------------------------------------------------------------------------

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct __align__(8) float2 {
  float x, y;
};
struct __align__(16) float4 {
  float x, y, z, w;
};
struct __align__(8) int2 {
  int x, y;
};
struct __align__(16) int4 {
  int x, y, z, w;
};
struct __align__(8) uint2 {
  unsigned x, y;
};
struct __align__(16) uint4 {
  unsigned x, y, z, w;
};

inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }

// ---- 16-bit floats -----------------------------------------------------------------------------

struct __half {
  uint16_t bits;
};
struct __nv_bfloat16 {
  uint16_t bits;
};
struct __align__(4) __half2 {
  __half x, y;
};
struct __align__(4) __nv_bfloat162 {
  __nv_bfloat16 x, y;
};

inline float __half2float(__half h) { return vt::f16_to_f32(h.bits); }
inline __half __float2half_rn(float f) { return {vt::f32_to_f16(f)}; }
inline __half __float2half(float f) { return __float2half_rn(f); }
inline float __bfloat162float(__nv_bfloat16 h) { return vt::bf16_to_f32(h.bits); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return {vt::f32_to_bf16(f)}; }
inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }
inline __half2 __floats2half2_rn(float a, float b) { return {__float2half_rn(a), __float2half_rn(b)}; }
inline float2 __half22float2(__half2 v) { return {__half2float(v.x), __half2float(v.y)}; }
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) {
  return {__float2bfloat16_rn(a), __float2bfloat16_rn(b)};
}
inline float2 __bfloat1622float2(__nv_bfloat162 v) { return {__bfloat162float(v.x), __bfloat162float(v.y)}; }

// ---- math and bit intrinsics -------------------------------------------------------------------

inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __saturatef(float x) { return fminf(fmaxf(x, 0.0f), 1.0f); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline int __float2int_rn(float x) { return int(lrintf(x)); }
inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline int __float_as_int(float f) {
  int i;
  std::memcpy(&i, &f, 4);
  return i;
}
inline float __int_as_float(int i) {
  float f;
  std::memcpy(&f, &i, 4);
  return f;
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __ffs(unsigned x) { return __builtin_ffs(int(x)); }
inline int __clz(unsigned x) { return x == 0 ? 32 : __builtin_clz(x); }
// The four signed bytes of a times those of b, summed into c.
inline int __dp4a(int a, int b, int c) {
  for (int i = 0; i < 4; i++) c += int(int8_t(a >> (8 * i))) * int(int8_t(b >> (8 * i)));
  return c;
}
template <class T>
inline T __ldg(const T* p) {
  return *p;
}

#define EMU_MIN_MAX(T)                             \
  inline T max(T a, T b) { return a > b ? a : b; } \
  inline T min(T a, T b) { return a < b ? a : b; }
EMU_MIN_MAX(int)
EMU_MIN_MAX(unsigned)
EMU_MIN_MAX(long long)
EMU_MIN_MAX(unsigned long long)
EMU_MIN_MAX(long)
EMU_MIN_MAX(unsigned long)
#undef EMU_MIN_MAX
inline float max(float a, float b) { return fmaxf(a, b); }
inline float min(float a, float b) { return fminf(a, b); }

// ---- the emulated machine ----------------------------------------------------------------------

namespace emu {

constexpr int kWarpSize = 32;
constexpr int kMaxThreadsPerBlock = 1024;
constexpr size_t kMaxSharedBytes = 227 * 1024;  // what an H100 block may opt in to

// The CUDA thread running now (valid inside a kernel only).
const uint3& thread_index();
const uint3& block_index();
const dim3& block_dim();
const dim3& grid_dim();
void* dynamic_shared_memory();
// Aborts with the kernel's file and line when `pointer` is not a multiple of `bytes`: the fault
// a GPU raises for a misaligned vector access.
void check_aligned(const void* pointer, size_t bytes, const char* file, int line);

// Synchronization points of the calling fiber.
void sync_block();
void sync_warp();
// Every lane of the warp publishes `bits`; returns lane `source_lane`'s (its own when that lane
// does not exist). All lanes of the warp must call it.
uint64_t exchange(uint64_t bits, int source_lane);
int lane_id();

// Runs `thread_body` once per CUDA thread of the launch, on the stream (or records it).
struct Launch {
  const void* kernel;
  dim3 grid, block;
  size_t shared_bytes;
};

// Beyond 48 KiB of dynamic shared memory a kernel must opt in first (cudaFuncSetAttribute), or
// its launch fails, as on a GPU.
constexpr size_t kDefaultSharedBytes = 48 * 1024;
void set_max_dynamic_shared(const void* kernel, size_t bytes);
struct Stream;
void enqueue_launch(Stream* stream, const Launch& launch, std::function<void()> thread_body);

template <class... Params, class... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes, Stream* stream, Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args), "kernel launched with the wrong number of arguments");
  // Arguments are converted and copied at launch, as CUDA copies them into the launch's parameters.
  std::tuple<std::decay_t<Params>...> params(std::forward<Args>(args)...);
  enqueue_launch(stream, Launch{reinterpret_cast<const void*>(kernel), grid, block, shared_bytes},
                 [kernel, params]() { std::apply(kernel, params); });
}

}  // namespace emu

#define threadIdx (::emu::thread_index())
#define blockIdx (::emu::block_index())
#define blockDim (::emu::block_dim())
#define gridDim (::emu::grid_dim())
constexpr int warpSize = ::emu::kWarpSize;

inline void __syncthreads() { ::emu::sync_block(); }
inline void __syncwarp(unsigned = 0xffffffffu) { ::emu::sync_warp(); }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

namespace emu {
template <class T>
T shuffle_from(T value, int source_lane) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffles move at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = exchange(bits, source_lane);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}
// The first lane of the calling lane's segment of `width` lanes.
inline int segment_base(int width) { return lane_id() & ~(width - 1); }
}  // namespace emu

template <class T>
T __shfl_sync(unsigned, T value, int source, int width = warpSize) {
  return ::emu::shuffle_from(value, ::emu::segment_base(width) + (source & (width - 1)));
}
template <class T>
T __shfl_xor_sync(unsigned, T value, int lane_mask, int width = warpSize) {
  int target = ::emu::lane_id() ^ lane_mask;
  bool inside = (target & ~(width - 1)) == ::emu::segment_base(width);
  return ::emu::shuffle_from(value, inside ? target : ::emu::lane_id());
}
template <class T>
T __shfl_down_sync(unsigned, T value, unsigned delta, int width = warpSize) {
  int lane = ::emu::lane_id();
  bool inside = (lane & (width - 1)) + int(delta) < width;
  return ::emu::shuffle_from(value, inside ? lane + int(delta) : lane);
}
template <class T>
T __shfl_up_sync(unsigned, T value, unsigned delta, int width = warpSize) {
  int lane = ::emu::lane_id();
  bool inside = (lane & (width - 1)) >= int(delta);
  return ::emu::shuffle_from(value, inside ? lane - int(delta) : lane);
}
unsigned __ballot_sync(unsigned mask, int predicate);
inline int __any_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) != 0; }
inline int __all_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) == __ballot_sync(mask, 1); }
unsigned __activemask();

// ---- atomics -----------------------------------------------------------------------------------

#define EMU_INTEGER_ATOMICS(T)                                                                               \
  inline T atomicAdd(T* p, T v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }                       \
  inline T atomicSub(T* p, T v) { return __atomic_fetch_sub(p, v, __ATOMIC_SEQ_CST); }                       \
  inline T atomicExch(T* p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }                     \
  inline T atomicCAS(T* p, T expected, T desired) {                                                          \
    __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);           \
    return expected;                                                                                         \
  }                                                                                                          \
  inline T atomicMax(T* p, T v) {                                                                            \
    T old = __atomic_load_n(p, __ATOMIC_SEQ_CST);                                                            \
    while (old < v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) { \
    }                                                                                                        \
    return old;                                                                                              \
  }                                                                                                          \
  inline T atomicMin(T* p, T v) {                                                                            \
    T old = __atomic_load_n(p, __ATOMIC_SEQ_CST);                                                            \
    while (old > v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) { \
    }                                                                                                        \
    return old;                                                                                              \
  }
EMU_INTEGER_ATOMICS(int)
EMU_INTEGER_ATOMICS(unsigned)
EMU_INTEGER_ATOMICS(unsigned long long)
#undef EMU_INTEGER_ATOMICS

inline float atomicAdd(float* p, float v) {
  auto* word = reinterpret_cast<unsigned*>(p);
  unsigned old = __atomic_load_n(word, __ATOMIC_SEQ_CST);
  while (!__atomic_compare_exchange_n(word, &old, __float_as_uint(__uint_as_float(old) + v), false, __ATOMIC_SEQ_CST,
                                      __ATOMIC_SEQ_CST)) {
  }
  return __uint_as_float(old);
}
inline float atomicExch(float* p, float v) {
  return __uint_as_float(atomicExch(reinterpret_cast<unsigned*>(p), __float_as_uint(v)));
}

// ---- runtime API -------------------------------------------------------------------------------

enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorInvalidDevice = 101,
  cudaErrorNoDevice = 100,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureUnmatched = 903,
};
typedef enum cudaError cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};

enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2
};
enum cudaStreamCaptureStatus {
  cudaStreamCaptureStatusNone = 0,
  cudaStreamCaptureStatusActive = 1,
  cudaStreamCaptureStatusInvalidated = 2
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
enum cudaDeviceAttr { cudaDevAttrMaxSharedMemoryPerBlockOptin = 97, cudaDevAttrMultiProcessorCount = 16 };

constexpr unsigned cudaStreamDefault = 0;
constexpr unsigned cudaStreamNonBlocking = 1;
constexpr unsigned cudaHostAllocDefault = 0;

typedef ::emu::Stream* cudaStream_t;
namespace emu {
struct Graph;
struct GraphExec;
}  // namespace emu
typedef ::emu::Graph* cudaGraph_t;
typedef ::emu::GraphExec* cudaGraphExec_t;

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  size_t sharedMemPerBlockOptin;
  int warpSize;
  int maxThreadsPerBlock;
  int multiProcessorCount;
  int major;
  int minor;
  int l2CacheSize;
};

const char* cudaGetErrorString(cudaError_t error);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);

cudaError_t cudaMalloc(void** ptr, size_t bytes);
template <class T>
cudaError_t cudaMalloc(T** ptr, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMallocHost(void** ptr, size_t bytes);
cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned flags);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemcpy2DAsync(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width,
                              size_t height, cudaMemcpyKind kind, cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* ptr, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream = nullptr);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);

template <class Kernel>
cudaError_t cudaFuncSetAttribute(Kernel kernel, cudaFuncAttribute, int value) {
  if (value < 0 || size_t(value) > ::emu::kMaxSharedBytes) return cudaErrorInvalidValue;
  ::emu::set_max_dynamic_shared(reinterpret_cast<const void*>(kernel), size_t(value));
  return cudaSuccess;
}

#include "pipeline.h"
#include "wmma.h"
