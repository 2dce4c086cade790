// The one place that knows whether the kernels are built by nvcc for a GPU or by g++ against
// the CPU emulation in cuda/emu/ (the test build). Kernel files include this and write plain
// CUDA, with two exceptions that C++ cannot spell the CUDA way:
//   VT_LAUNCH(kernel, grid, block, shared_bytes, stream, args...)   instead of kernel<<<...>>>(args)
//     (`kernel` must be one token: bind a template instance to a variable first:
//      `auto kernel = &rms_norm_kernel<T, 256>;`)
//   VT_DYNAMIC_SHARED(type, name);   instead of extern __shared__ type name[]
// and one restriction: no __CUDA_ARCH__ checks and no inline PTX, so that every line of a kernel
// runs in the emulation too. A vector access (8 or 16 bytes at once) states its alignment with
// VT_CHECK_ALIGNED(pointer, bytes): free on the GPU (where a misaligned one faults), checked in
// the emulation (where x86 would quietly allow it). vt_prefetch_l2(pointer) asks the GPU's L2
// for the 128-byte line holding pointer without waiting for it; in the emulation it reads the
// byte, so that AddressSanitizer catches a prefetch outside the buffer, as nothing on a GPU does.
#pragma once

#if defined(__CUDACC__)

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_pipeline.h>
#include <cuda_runtime.h>
#include <mma.h>

#define VT_LAUNCH(kernel, grid, block, shared_bytes, stream, ...) \
  kernel<<<(grid), (block), (shared_bytes), (stream)>>>(__VA_ARGS__)

#define VT_DYNAMIC_SHARED(type, name)                               \
  extern __shared__ __align__(16) unsigned char vt_dynamic_smem_[]; \
  type* name = reinterpret_cast<type*>(vt_dynamic_smem_)

#define VT_CHECK_ALIGNED(pointer, bytes) ((void)0)

__device__ __forceinline__ void vt_prefetch_l2(const void* pointer) {
  asm volatile("prefetch.global.L2 [%0];" ::"l"(pointer));
}

#else

#include "cuda_emu.h"

#define VT_LAUNCH(kernel, grid, block, shared_bytes, stream, ...) \
  ::emu::launch((kernel), (grid), (block), (shared_bytes), (stream), ##__VA_ARGS__)

#define VT_DYNAMIC_SHARED(type, name) type* name = reinterpret_cast<type*>(::emu::dynamic_shared_memory())

#define VT_CHECK_ALIGNED(pointer, bytes) ::emu::check_aligned((pointer), (bytes), __FILE__, __LINE__)

inline void vt_prefetch_l2(const void* pointer) { (void)*static_cast<const volatile unsigned char*>(pointer); }

#endif
