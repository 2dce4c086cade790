// cp.async in the emulation: the pipeline primitives of <cuda_pipeline.h> (sm_80+), i.e.
//   __pipeline_memcpy_async(dst_shared, src_global, size_and_align, zfill = 0)
//   __pipeline_commit()            closes the thread's open group of copies
//   __pipeline_wait_prior(n)       completes all but the newest n committed groups (n > 8: 8)
// Each thread keeps its own copies, as on a GPU. A copy reads its source when issued but lands in
// shared memory only when a wait of the issuing thread retires its group (copies not yet
// committed are not waited for, as in CUDA, and are dropped when the thread exits): a kernel that
// reads a destination before the wait, or another thread's before a barrier after that wait, sees
// the old data and fails its tests. The rules cp.async has abort with the kernel's file and line:
// 4, 8 or 16 bytes, zfill (trailing bytes zeroed instead of read) at most that, both addresses
// aligned to the size.
#pragma once

namespace emu {
void pipeline_memcpy_async(const char* file, int line, void* dst, const void* src, size_t size_and_align,
                           size_t zfill = 0);
void pipeline_commit();
void pipeline_wait_prior(size_t prior);
}  // namespace emu

#define __pipeline_memcpy_async(...) ::emu::pipeline_memcpy_async(__FILE__, __LINE__, __VA_ARGS__)
inline void __pipeline_commit() { ::emu::pipeline_commit(); }
inline void __pipeline_wait_prior(size_t prior) { ::emu::pipeline_wait_prior(prior); }
