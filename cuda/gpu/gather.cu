// Row gather by index (e.g. the last token of each sequence before the LM head).
//
// A pure copy, so memory bound: rows are moved in the widest unit (16, 8, 4, 2 or 1 bytes) that
// the row size and both base addresses allow. A row can be long (a 150k-entry f32 logits row is
// 600 KB) while there are few rows, so the grid is 2-D: x picks the row, y splits it into
// slices, each walked by a block of 256 threads with consecutive threads on consecutive units.
#include "checks.h"
#include "vec.cuh"

namespace vt::gpu {
namespace {

constexpr int kMaxThreads = 256;
constexpr size_t kUnitsPerThread = 8;  // work per thread before another y-slice is worth a block
constexpr unsigned kMaxSlices = 65535;

template <class U>
__global__ void gather_rows_kernel(U* dst, const U* src, const int32_t* indices, int32_t num_rows, size_t row_units) {
  for (int32_t row = blockIdx.x; row < num_rows; row += gridDim.x) {
    const int32_t index = indices[row];
    const U* from = src + size_t(index < 0 ? 0 : index) * row_units;
    U* to = dst + size_t(row) * row_units;
    VT_CHECK_ALIGNED(from, sizeof(U));
    VT_CHECK_ALIGNED(to, sizeof(U));
    for (size_t j = size_t(blockIdx.y) * blockDim.x + threadIdx.x; j < row_units; j += size_t(gridDim.y) * blockDim.x) {
      if (index >= 0) {
        to[j] = from[j];
      } else {
        to[j] = U{};  // a negative index (not checkable on the host) gives a zero row
      }
    }
  }
}

template <class U>
vt_status launch(vt_context* ctx, void* dst, const void* src, const int32_t* indices, int32_t num_rows,
                 size_t row_bytes) {
  const size_t units = row_bytes / sizeof(U);
  const int threads = row_threads(units, kMaxThreads);
  const size_t slices = ceil_div(units, threads * kUnitsPerThread);
  const unsigned rows = grid_blocks(ctx, size_t(num_rows), threads);
  dim3 grid(rows, unsigned(slices < kMaxSlices ? slices : kMaxSlices));
  auto kernel = &gather_rows_kernel<U>;
  VT_LAUNCH(kernel, grid, threads, 0, ctx->stream, static_cast<U*>(dst), static_cast<const U*>(src), indices, num_rows,
            units);
  return launch_status("vt_gather_rows");
}

}  // namespace
}  // namespace vt::gpu

using namespace vt::gpu;

extern "C" {

vt_status vt_gather_rows(vt_context* ctx, void* dst, const void* src, const int32_t* indices, int32_t num_rows,
                         size_t row_bytes) {
  const char* op = "vt_gather_rows";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_gather_rows_args(op, dst, src, indices, num_rows));
  // indices live on the device: a negative one cannot be rejected without a synchronization, so
  // the kernel writes a zero row for it.
  if (num_rows == 0 || row_bytes == 0) return vt::ok();
  switch (widest_unit({row_bytes, address_of(dst), address_of(src)})) {
    case 16:
      return launch<uint4>(ctx, dst, src, indices, num_rows, row_bytes);
    case 8:
      return launch<uint2>(ctx, dst, src, indices, num_rows, row_bytes);
    case 4:
      return launch<uint32_t>(ctx, dst, src, indices, num_rows, row_bytes);
    case 2:
      return launch<uint16_t>(ctx, dst, src, indices, num_rows, row_bytes);
    default:
      return launch<uint8_t>(ctx, dst, src, indices, num_rows, row_bytes);
  }
}

}  // extern "C"
