// The library, the device and its memory for the CUDA backend: a context is a device, a
// non-blocking stream every op is enqueued on, and cuBLAS when it is installed.
#include <dlfcn.h>

#include <cstdio>
#include <new>
#include <string>

#include "checks.h"
#include "common.cuh"

namespace vt::gpu {

vt_status cuda_fail(cudaError_t error, const char* op) {
  // CUDA also keeps a failed call's error as the "last error"; it is reported here, so clear it
  // lest the next launch check blame an innocent kernel.
  cudaGetLastError();
  return fail(error == cudaErrorMemoryAllocation ? VT_ERR_OUT_OF_MEMORY : VT_ERR_DEVICE,
              std::string(op) + ": " + cudaGetErrorString(error));
}

}  // namespace vt::gpu

namespace {

bool nvidia_driver_loadable() {
  void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (driver) dlclose(driver);
  return driver != nullptr;
}

// Split-K partials of 256 sequences x 64 query heads x 4 partitions of head_dim 128 fit; larger
// batches split into fewer, longer partitions.
constexpr size_t kScratchBytes = size_t(32) << 20;

// Host copies and synchronization cannot be recorded in a graph; say so instead of letting CUDA
// invalidate the capture with a less helpful message.
vt_status refuse_while_capturing(vt_context* ctx, const char* op) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  VT_CUDA_TRY(cudaStreamIsCapturing(ctx->stream, &status), op);
  if (status == cudaStreamCaptureStatusNone) return VT_OK;
  return vt::fail(VT_ERR_INVALID_ARGUMENT, std::string(op) + ": not allowed while a graph is being captured");
}

}  // namespace

extern "C" {

int32_t vt_abi_version(void) { return VT_ABI_VERSION; }

const char* vt_backend_name(void) { return "cuda"; }

vt_status vt_device_count(int32_t* out_count) {
  VT_REQUIRE(out_count, "vt_device_count", "out_count is NULL");
  int count = 0;
  // No driver or no GPU is an answer (0 devices), not an error: the caller falls back to the CPU.
  // CUDA's reason stays readable in vt_last_error for the caller to report.
  cudaError_t error = cudaGetDeviceCount(&count);
  *out_count = error == cudaSuccess ? count : 0;
  if (error == cudaSuccess) return vt::ok();
  cudaGetLastError();
  // With no driver installed at all CUDA says "driver version is insufficient", which sends users
  // looking for a newer driver: say plainly that there is none.
  const std::string reason =
      nvidia_driver_loadable() ? cudaGetErrorString(error) : "no NVIDIA driver found (libcuda.so.1 cannot be loaded)";
  return vt::fail(VT_OK, "vt_device_count: " + reason);
}

vt_status vt_context_create(int32_t device_index, int32_t num_threads, vt_context** out) {
  const char* op = "vt_context_create";
  VT_REQUIRE(out, op, "out is NULL");
  *out = nullptr;
  VT_REQUIRE(num_threads >= 0, op, "num_threads must be >= 0");
  int count = 0;
  VT_CUDA_TRY(cudaGetDeviceCount(&count), op);
  VT_REQUIRE(device_index >= 0 && device_index < count, op,
             "device " + std::to_string(device_index) + " does not exist (" + std::to_string(count) + " devices)");
  VT_CUDA_TRY(cudaSetDevice(device_index), op);
  auto* ctx = new (std::nothrow) vt_context{};
  if (!ctx) return vt::fail(VT_ERR_OUT_OF_MEMORY, std::string(op) + ": out of host memory");
  ctx->device = device_index;
  int shared = 0;
  cudaError_t error = cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking);
  if (error == cudaSuccess) error = cudaDeviceGetAttribute(&ctx->num_sms, cudaDevAttrMultiProcessorCount, device_index);
  if (error == cudaSuccess)
    error = cudaDeviceGetAttribute(&shared, cudaDevAttrMaxSharedMemoryPerBlockOptin, device_index);
  if (error == cudaSuccess) error = cudaMalloc(&ctx->scratch, kScratchBytes);
  if (error != cudaSuccess) {
    if (ctx->scratch) cudaFree(ctx->scratch);
    if (ctx->stream) cudaStreamDestroy(ctx->stream);
    delete ctx;
    return vt::gpu::cuda_fail(error, op);
  }
  ctx->max_shared_bytes = size_t(shared);
  ctx->scratch_bytes = kScratchBytes;
  ctx->blas = vt::gpu::blas_open(ctx->stream);
  *out = ctx;
  return vt::ok();
}

vt_status vt_context_destroy(vt_context* ctx) {
  VT_REQUIRE(ctx, "vt_context_destroy", "ctx is NULL");
  cudaError_t error = cudaStreamSynchronize(ctx->stream);
  vt::gpu::blas_close(ctx->blas);
  cudaFree(ctx->scratch);
  cudaStreamDestroy(ctx->stream);
  delete ctx;
  return error == cudaSuccess ? vt::ok() : vt::gpu::cuda_fail(error, "vt_context_destroy");
}

// The tensor-core GEMM of prefill and the GEMV of decode sum in different orders; no kernel set
// with one order for every batch exists here yet.
vt_status vt_context_set_batch_invariant(vt_context* ctx, int32_t enabled) {
  const char* op = "vt_context_set_batch_invariant";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  if (enabled)
    return vt::fail(VT_ERR_UNSUPPORTED, std::string(op) + ": batch-invariant kernels are not implemented on CUDA");
  return vt::ok();
}

// A CUDA stream already runs ops asynchronously.
vt_status vt_context_set_async(vt_context* ctx, int32_t enabled) {
  (void)enabled;
  VT_REQUIRE(ctx, "vt_context_set_async", "ctx is NULL");
  return vt::ok();
}

vt_status vt_synchronize(vt_context* ctx) {
  const char* op = "vt_synchronize";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(refuse_while_capturing(ctx, op));
  VT_CUDA_TRY(cudaStreamSynchronize(ctx->stream), op);
  return vt::ok();
}

vt_status vt_memory_info(vt_context* ctx, size_t* free_bytes, size_t* total_bytes) {
  const char* op = "vt_memory_info";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  size_t free_now = 0, total = 0;
  VT_CUDA_TRY(cudaMemGetInfo(&free_now, &total), op);
  if (free_bytes) *free_bytes = free_now;
  if (total_bytes) *total_bytes = total;
  return vt::ok();
}

vt_status vt_device_name(vt_context* ctx, char* buffer, size_t buffer_bytes) {
  const char* op = "vt_device_name";
  VT_REQUIRE(ctx && buffer && buffer_bytes > 0, op, "ctx or buffer is NULL, or buffer_bytes is 0");
  cudaDeviceProp prop;
  VT_CUDA_TRY(cudaGetDeviceProperties(&prop, ctx->device), op);
  std::snprintf(buffer, buffer_bytes, "%s", prop.name);
  return vt::ok();
}

vt_status vt_malloc(vt_context* ctx, size_t bytes, void** out) {
  const char* op = "vt_malloc";
  VT_REQUIRE(ctx && out, op, "ctx or out is NULL");
  *out = nullptr;
  VT_TRY(refuse_while_capturing(ctx, op));
  VT_CUDA_TRY(cudaMalloc(out, bytes == 0 ? 1 : bytes), op);
  return vt::ok();
}

vt_status vt_free(vt_context* ctx, void* ptr) {
  const char* op = "vt_free";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(refuse_while_capturing(ctx, op));
  VT_CUDA_TRY(cudaFree(ptr), op);
  return vt::ok();
}

vt_status vt_malloc_host(vt_context* ctx, size_t bytes, void** out) {
  const char* op = "vt_malloc_host";
  VT_REQUIRE(ctx && out, op, "ctx or out is NULL");
  *out = nullptr;
  VT_TRY(refuse_while_capturing(ctx, op));
  VT_CUDA_TRY(cudaHostAlloc(out, bytes == 0 ? 1 : bytes, cudaHostAllocDefault), op);
  return vt::ok();
}

vt_status vt_free_host(vt_context* ctx, void* ptr) {
  const char* op = "vt_free_host";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(refuse_while_capturing(ctx, op));
  VT_CUDA_TRY(cudaFreeHost(ptr), op);
  return vt::ok();
}

vt_status vt_memcpy(vt_context* ctx, void* dst, const void* src, size_t bytes, vt_copy_kind kind) {
  const char* op = "vt_memcpy";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_memcpy_args(op, dst, src, bytes, kind));
  if (bytes == 0) return vt::ok();
  if (kind != VT_COPY_DEVICE_TO_DEVICE) VT_TRY(refuse_while_capturing(ctx, op));
  const cudaMemcpyKind cuda_kind = kind == VT_COPY_HOST_TO_DEVICE   ? cudaMemcpyHostToDevice
                                   : kind == VT_COPY_DEVICE_TO_HOST ? cudaMemcpyDeviceToHost
                                                                    : cudaMemcpyDeviceToDevice;
  VT_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cuda_kind, ctx->stream), op);
  // The host reads (or may reuse) its buffer as soon as we return.
  if (kind != VT_COPY_DEVICE_TO_DEVICE) VT_CUDA_TRY(cudaStreamSynchronize(ctx->stream), op);
  return vt::ok();
}

vt_status vt_memset(vt_context* ctx, void* ptr, int32_t value, size_t bytes) {
  const char* op = "vt_memset";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  if (bytes == 0) return vt::ok();
  VT_REQUIRE(ptr, op, "ptr is NULL");
  VT_CUDA_TRY(cudaMemsetAsync(ptr, value, bytes, ctx->stream), op);
  return vt::ok();
}

}  // extern "C"
