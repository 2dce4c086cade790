// Running a grid in the emulation: blocks in parallel on OpenMP threads; inside a block, one fiber
// per CUDA thread. A fiber runs until it reaches a synchronization point, then hands control back
// to its block's scheduler, which resumes the next fiber round-robin; a barrier opens once every
// thread that has not exited has arrived (CUDA's rule for __syncthreads since Volta). Each fiber
// also holds its thread's cp.async copies in flight (pipeline.h).
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cuda_emu.h"
#include "fiber.h"

namespace emu {
namespace {

// Enough for the kernels' register arrays and wmma fragments (a 16x16 f32 tile is 1 KiB per
// fragment here, since every lane holds the whole tile). Pages are only touched when used.
constexpr size_t kFiberStackBytes = 256 * 1024;

struct Barrier {
  int arrived = 0;
  unsigned generation = 0;
};

// A cp.async in flight: its source bytes (read at issue), where they land, and its group.
struct AsyncCopy {
  unsigned char* dst;
  unsigned char bytes[16];
  uint8_t size;
  uint8_t copied;  // bytes taken from the source; the rest of `size` lands as zeros
  uint64_t group;
};

struct Fiber {
  FiberContext context;
  uint3 index;
  int linear;
  bool done;
  std::vector<AsyncCopy> copies;  // issued, not landed yet
  uint64_t committed;             // groups committed so far: new copies join group `committed`
};

struct Block {
  std::vector<Fiber> fibers;
  std::vector<void*> stacks;  // reused across blocks and launches on this OS thread
  std::vector<unsigned char> dynamic_shared;
  std::vector<uint64_t> exchange;  // one slot per thread, for shuffles and votes
  std::vector<Barrier> warp_barriers;
  std::vector<int> warp_alive;
  Barrier block_barrier;
  int alive = 0;
  uint3 index;
  dim3 dim, grid;
  FiberContext scheduler;
  const std::function<void()>* body = nullptr;
  Fiber* current = nullptr;
  uint64_t progress = 0;  // bumps whenever a thread arrives at a barrier or exits
};

thread_local Block* this_block = nullptr;

Block& block() {
  if (!this_block) {
    std::fprintf(stderr, "cuda emulation: a device function ran outside a kernel\n");
    std::abort();
  }
  return *this_block;
}

void yield_to_scheduler() {
  Block& b = block();
  switch_fiber(b.current->context, b.scheduler);
}

// Waits at `barrier` until `*participants` threads (those still running) have arrived.
void wait_at(Barrier& barrier, const int* participants) {
  Block& b = block();
  b.progress++;
  unsigned generation = barrier.generation;
  if (++barrier.arrived >= *participants) {
    barrier.arrived = 0;
    barrier.generation++;
    return;
  }
  while (barrier.generation == generation) yield_to_scheduler();
}

// A thread that exits no longer counts: a barrier the others already wait at may now be full.
void release_if_full(Barrier& barrier, int participants) {
  if (barrier.arrived > 0 && barrier.arrived >= participants) {
    barrier.arrived = 0;
    barrier.generation++;
  }
}

[[noreturn]] void fiber_main() {
  Block& b = block();
  (*b.body)();
  Fiber& self = *b.current;
  self.done = true;
  self.copies.clear();  // never waited for: they do not land
  b.alive--;
  b.progress++;
  int warp = self.linear / kWarpSize;
  b.warp_alive[warp]--;
  release_if_full(b.block_barrier, b.alive);
  release_if_full(b.warp_barriers[warp], b.warp_alive[warp]);
  switch_fiber(self.context, b.scheduler);
  std::abort();  // a finished fiber is never resumed
}

void run_block(Block& b) {
  const int threads = int(b.dim.x * b.dim.y * b.dim.z);
  const int warps = (threads + kWarpSize - 1) / kWarpSize;
  b.fibers.resize(threads);
  while (int(b.stacks.size()) < threads) {
    void* stack =
        mmap(nullptr, kFiberStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (stack == MAP_FAILED) {
      std::fprintf(stderr, "cuda emulation: cannot map a fiber stack\n");
      std::abort();
    }
    b.stacks.push_back(stack);
  }
  b.exchange.assign(threads, 0);
  b.warp_barriers.assign(warps, Barrier{});
  b.warp_alive.assign(warps, 0);
  b.block_barrier = Barrier{};
  b.alive = threads;
  for (int t = 0; t < threads; t++) {
    Fiber& f = b.fibers[t];
    f.linear = t;
    f.index = uint3{unsigned(t) % b.dim.x, (unsigned(t) / b.dim.x) % b.dim.y, unsigned(t) / (b.dim.x * b.dim.y)};
    f.done = false;
    f.copies.clear();
    f.committed = 0;
    b.warp_alive[t / kWarpSize]++;
    start_fiber(f.context, b.stacks[t], kFiberStackBytes, fiber_main);
  }
  // Odd blocks resume their threads in reverse order, so a missing barrier shows whichever of
  // the two threads was meant to go first (CUDA promises no order between warps).
  const bool reverse = (b.index.x + b.index.y + b.index.z) % 2 == 1;
  while (b.alive > 0) {
    uint64_t before = b.progress;
    for (int i = 0; i < threads; i++) {
      Fiber& f = b.fibers[reverse ? threads - 1 - i : i];
      if (f.done) continue;
      b.current = &f;
      switch_fiber(b.scheduler, f.context);
    }
    if (b.progress == before) {
      std::fprintf(stderr,
                   "cuda emulation: deadlock in block (%u,%u,%u): threads wait at a barrier that the others "
                   "never reach\n",
                   b.index.x, b.index.y, b.index.z);
      std::abort();
    }
  }
  b.current = nullptr;
}

}  // namespace

const uint3& thread_index() { return block().current->index; }
const uint3& block_index() { return block().index; }
const dim3& block_dim() { return block().dim; }
const dim3& grid_dim() { return block().grid; }
void* dynamic_shared_memory() { return block().dynamic_shared.data(); }
int lane_id() { return block().current->linear % kWarpSize; }

void check_aligned(const void* pointer, size_t bytes, const char* file, int line) {
  if (reinterpret_cast<uintptr_t>(pointer) % bytes == 0) return;
  std::fprintf(stderr, "cuda emulation: misaligned %zu-byte access to %p at %s:%d\n", bytes, pointer, file, line);
  std::abort();
}

[[noreturn]] void misused_cp_async(const char* what, size_t value, const char* file, int line) {
  std::fprintf(stderr, "cuda emulation: __pipeline_memcpy_async with %s %zu at %s:%d\n", what, value, file, line);
  std::abort();
}

void pipeline_memcpy_async(const char* file, int line, void* dst, const void* src, size_t size_and_align,
                           size_t zfill) {
  if (size_and_align != 4 && size_and_align != 8 && size_and_align != 16)
    misused_cp_async("size (4, 8 or 16 bytes)", size_and_align, file, line);
  if (zfill > size_and_align) misused_cp_async("zfill above its size", zfill, file, line);
  if (reinterpret_cast<uintptr_t>(dst) % size_and_align != 0)
    misused_cp_async("a destination misaligned for its size", size_and_align, file, line);
  if (reinterpret_cast<uintptr_t>(src) % size_and_align != 0)
    misused_cp_async("a source misaligned for its size", size_and_align, file, line);
  Fiber& f = *block().current;
  AsyncCopy copy;
  copy.dst = static_cast<unsigned char*>(dst);
  copy.size = uint8_t(size_and_align);
  copy.copied = uint8_t(size_and_align - zfill);
  std::memcpy(copy.bytes, src, copy.copied);
  copy.group = f.committed;
  f.copies.push_back(copy);
}

void pipeline_commit() { block().current->committed++; }

void pipeline_wait_prior(size_t prior) {
  Fiber& f = *block().current;
  const uint64_t newest_kept = std::min<uint64_t>(prior, 8);  // as in CUDA, n > 8 counts as 8
  if (f.committed <= newest_kept) return;
  const uint64_t retired = f.committed - newest_kept;  // groups [0, retired) complete
  size_t kept = 0;
  for (AsyncCopy& copy : f.copies) {
    if (copy.group < retired) {
      std::memcpy(copy.dst, copy.bytes, copy.copied);
      std::memset(copy.dst + copy.copied, 0, copy.size - copy.copied);
    } else {
      f.copies[kept++] = copy;
    }
  }
  f.copies.resize(kept);
}

void sync_block() {
  Block& b = block();
  wait_at(b.block_barrier, &b.alive);
}

void sync_warp() {
  Block& b = block();
  int warp = b.current->linear / kWarpSize;
  wait_at(b.warp_barriers[warp], &b.warp_alive[warp]);
}

uint64_t exchange(uint64_t bits, int source_lane) {
  Block& b = block();
  const int linear = b.current->linear;
  const int base = linear - linear % kWarpSize;
  b.exchange[linear] = bits;
  sync_warp();
  const int source = base + source_lane;
  uint64_t out = source >= 0 && source < int(b.exchange.size()) && source_lane < kWarpSize ? b.exchange[source] : bits;
  sync_warp();  // nobody overwrites a slot before every lane has read
  return out;
}

void run_grid(const Launch& launch, const std::function<void()>& thread_body) {
  const long blocks = long(launch.grid.x) * launch.grid.y * launch.grid.z;
  // Small grids stay on the calling thread: waking the OpenMP team costs more than they do.
  const int threads = blocks < 2 ? 1 : omp_get_max_threads();
#pragma omp parallel num_threads(threads)
  {
    static thread_local Block local;
    Block& b = local;
    b.dim = launch.block;
    b.grid = launch.grid;
    b.body = &thread_body;
    b.dynamic_shared.assign(launch.shared_bytes + 16, 0);
    Block* saved = this_block;
    this_block = &b;
#pragma omp for schedule(dynamic, 1)
    for (long i = 0; i < blocks; i++) {
      b.index = uint3{unsigned(i % launch.grid.x), unsigned((i / launch.grid.x) % launch.grid.y),
                      unsigned(i / (long(launch.grid.x) * launch.grid.y))};
      run_block(b);
    }
    this_block = saved;
  }
}

}  // namespace emu

unsigned __ballot_sync(unsigned, int predicate) {
  emu::Block& b = emu::block();
  const int linear = b.current->linear;
  const int base = linear - linear % emu::kWarpSize;
  b.exchange[linear] = predicate != 0;
  emu::sync_warp();
  unsigned mask = 0;
  for (int lane = 0; lane < emu::kWarpSize && base + lane < int(b.exchange.size()); lane++)
    if (b.exchange[base + lane]) mask |= 1u << lane;
  emu::sync_warp();
  return mask;
}

unsigned __activemask() {
  emu::Block& b = emu::block();
  const int linear = b.current->linear;
  const int base = linear - linear % emu::kWarpSize;
  unsigned mask = 0;
  for (int lane = 0; lane < emu::kWarpSize && base + lane < int(b.fibers.size()); lane++)
    if (!b.fibers[base + lane].done) mask |= 1u << lane;
  return mask;
}
