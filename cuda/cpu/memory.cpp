// Device memory on the CPU backend is host memory: aligned allocation, and copies and fills split
// across threads, since a single core cannot saturate the memory bus.
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "checks.h"
#include "common.h"
#include "op.h"

namespace {

constexpr size_t kAlignment = 64;  // a cache line and an AVX-512 register
constexpr size_t kHugePage = size_t(2) << 20;

// Large buffers (weights, the KV cache) are aligned to huge pages and advised to use them, which
// spares the TLB misses of walking gigabytes in 4 KiB pages. A zero-byte request still returns a
// distinct pointer, so the NULL checks of the ops never reject an empty tensor.
vt_status allocate(const char* op, size_t bytes, void** out) {
  VT_REQUIRE(out, op, "out is NULL");
  *out = nullptr;
  size_t alignment = bytes >= kHugePage ? kHugePage : kAlignment;
  if (bytes > SIZE_MAX - alignment)
    return vt::fail(VT_ERR_OUT_OF_MEMORY, std::string(op) + ": cannot allocate " + std::to_string(bytes) + " bytes");
  size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  if (rounded == 0) rounded = kAlignment;
  void* ptr = nullptr;
  if (posix_memalign(&ptr, alignment, rounded) != 0)
    return vt::fail(VT_ERR_OUT_OF_MEMORY, std::string(op) + ": cannot allocate " + std::to_string(bytes) + " bytes");
  if (alignment == kHugePage) madvise(ptr, rounded, MADV_HUGEPAGE);
  *out = ptr;
  return vt::ok();
}

// memcpy split into one contiguous range per thread. Overlapping ranges go through a single
// memmove, whose result does not depend on the order of the pieces.
void copy_bytes(const vt_context* ctx, void* dst, const void* src, size_t bytes) {
  auto* d = static_cast<char*>(dst);
  auto* s = static_cast<const char*>(src);
  if (d < s + bytes && s < d + bytes) {
    std::memmove(d, s, bytes);
    return;
  }
  int threads = vt::threads_for(ctx, bytes / 64);
  if (threads == 1) {
    std::memcpy(d, s, bytes);
    return;
  }
  size_t piece = (bytes / threads + kAlignment - 1) / kAlignment * kAlignment;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int t = 0; t < threads; t++) {
    size_t begin = size_t(t) * piece;
    if (begin < bytes) std::memcpy(d + begin, s + begin, std::min(piece, bytes - begin));
  }
}

}  // namespace

extern "C" {

vt_status vt_malloc(vt_context* ctx, size_t bytes, void** out) {
  VT_REQUIRE(ctx, "vt_malloc", "ctx is NULL");
  VT_TRY(vt::cpu::refuse_while_capturing(ctx, "vt_malloc"));
  return allocate("vt_malloc", bytes, out);
}

vt_status vt_free(vt_context* ctx, void* ptr) {
  VT_REQUIRE(ctx, "vt_free", "ctx is NULL");
  VT_TRY(vt::cpu::refuse_while_capturing(ctx, "vt_free"));
  VT_TRY(vt::cpu::wait_for_stream(ctx));  // a queued op may still use it
  std::free(ptr);
  return vt::ok();
}

vt_status vt_malloc_host(vt_context* ctx, size_t bytes, void** out) {
  VT_REQUIRE(ctx, "vt_malloc_host", "ctx is NULL");
  VT_TRY(vt::cpu::refuse_while_capturing(ctx, "vt_malloc_host"));
  return allocate("vt_malloc_host", bytes, out);
}

vt_status vt_free_host(vt_context* ctx, void* ptr) {
  VT_REQUIRE(ctx, "vt_free_host", "ctx is NULL");
  VT_TRY(vt::cpu::refuse_while_capturing(ctx, "vt_free_host"));
  VT_TRY(vt::cpu::wait_for_stream(ctx));  // a queued op may still use it
  std::free(ptr);
  return vt::ok();
}

// Memory-bound; each thread owns one contiguous range of the copy.
vt_status vt_memcpy(vt_context* ctx, void* dst, const void* src, size_t bytes, vt_copy_kind kind) {
  VT_REQUIRE(ctx, "vt_memcpy", "ctx is NULL");
  VT_TRY(vt::check_memcpy_args("vt_memcpy", dst, src, bytes, kind));
  // Host memory is copied before the call returns (the caller may reuse it at once), after the ops
  // queued before it; a copy between device buffers is an op like any other.
  if (kind != VT_COPY_DEVICE_TO_DEVICE) {
    VT_TRY(vt::cpu::refuse_while_capturing(ctx, "vt_memcpy"));
    // A copy one thread makes (a step's inputs, its tokens) is made here once the queue is done: a
    // hand-off to the stream's thread and back would cost more than the copy.
    if (vt::threads_for(ctx, bytes / 64) > 1) VT_RUN_ON_STREAM_AND_WAIT(ctx, vt_memcpy, dst, src, bytes, kind);
    VT_TRY(vt::cpu::wait_for_stream(ctx));
  } else {
    VT_RECORD_QUEUE_OR_RUN(ctx, vt_memcpy, dst, src, bytes, kind);
  }
  if (bytes == 0) return vt::ok();
  copy_bytes(ctx, dst, src, bytes);
  return vt::ok();
}

// Memory-bound; each thread owns one contiguous range.
vt_status vt_memset(vt_context* ctx, void* ptr, int32_t value, size_t bytes) {
  VT_REQUIRE(ctx, "vt_memset", "ctx is NULL");
  if (bytes == 0) return vt::ok();
  VT_REQUIRE(ptr, "vt_memset", "ptr is NULL");
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_memset, ptr, value, bytes);
  auto* p = static_cast<char*>(ptr);
  int threads = vt::threads_for(ctx, bytes / 64);
  size_t piece = (bytes / threads + kAlignment - 1) / kAlignment * kAlignment;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int t = 0; t < threads; t++) {
    size_t begin = size_t(t) * piece;
    if (begin < bytes) std::memset(p + begin, value, std::min(piece, bytes - begin));
  }
  return vt::ok();
}

}  // extern "C"
