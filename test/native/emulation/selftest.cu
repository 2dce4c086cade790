// Checks of the CUDA emulation itself (cuda/emu/), run by test/native/emulation.test.ts: the rules
// the kernels of cuda/gpu/ rely on, each in a small kernel compared with what CUDA guarantees.
// `selftest` runs every check and prints "ok <n> checks" (exit 0) or the failures (exit 1);
// `selftest deadlock` launches a kernel whose threads wait at barriers the others never reach,
// which the emulation must report and abort on instead of hanging; `selftest misaligned` one
// whose 16-byte load is misaligned, which a GPU faults on and the emulation must too. Misused
// cp.async copies must abort as well: those checks run their kernel in a child process (forked
// before this process starts any OpenMP thread) and expect it to die with the message.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common.cuh"

namespace {

int checks = 0, failures = 0;

void check(bool ok, const char* what) {
  checks++;
  if (!ok) {
    failures++;
    std::printf("FAIL: %s\n", what);
  }
}

template <class T>
std::vector<T> download(const T* device, size_t count) {
  std::vector<T> host(count);
  cudaMemcpy(host.data(), device, count * sizeof(T), cudaMemcpyDeviceToHost);
  return host;
}

// Every thread sees every other thread's write after __syncthreads; threads that exit early do
// not hold the barrier.
__global__ void barrier_kernel(int* out, int active) {
  __shared__ int values[256];
  if (int(threadIdx.x) >= active) return;
  values[threadIdx.x] = int(threadIdx.x) * 3;
  __syncthreads();
  out[blockIdx.x * active + threadIdx.x] = values[(threadIdx.x + 1) % active];
}

__global__ void shuffle_kernel(int* out) {
  const int lane = threadIdx.x % 32;
  int* row = out + threadIdx.x * 6;
  row[0] = __shfl_xor_sync(0xffffffffu, int(threadIdx.x), 5);
  row[1] = __shfl_down_sync(0xffffffffu, lane, 3);
  row[2] = __shfl_up_sync(0xffffffffu, lane, 2);
  row[3] = __shfl_sync(0xffffffffu, lane, 3, 8);
  row[4] = int(__ballot_sync(0xffffffffu, lane % 3 == 0));
  row[5] = __any_sync(0xffffffffu, lane == 7) + 2 * __all_sync(0xffffffffu, lane < 32);
}

__global__ void atomic_kernel(int* counter, float* sum, int* maximum) {
  atomicAdd(counter, 1);
  atomicAdd(sum, 0.5f);
  atomicMax(maximum, int(blockIdx.x * blockDim.x + threadIdx.x));
}

// Blocks run concurrently on several OS threads: each must see only its own shared memory.
__global__ void shared_isolation_kernel(int* out) {
  __shared__ int mine;
  VT_DYNAMIC_SHARED(int, dynamic);
  if (threadIdx.x == 0) {
    mine = int(blockIdx.x);
    dynamic[0] = int(blockIdx.x) * 7;
  }
  __syncthreads();
  for (int i = 0; i < 4; i++) __syncthreads();  // let other blocks' fibers interleave
  if (threadIdx.x == 5) out[blockIdx.x] = mine + dynamic[0];
}

__global__ void wmma_kernel(const __nv_bfloat16* a, const __nv_bfloat16* b, float* c) {
  using namespace nvcuda::wmma;
  fragment<matrix_a, 16, 16, 16, __nv_bfloat16, row_major> fa;
  fragment<matrix_b, 16, 16, 16, __nv_bfloat16, col_major> fb;
  fragment<accumulator, 16, 16, 16, float> acc;
  fill_fragment(acc, 1.0f);
  load_matrix_sync(fa, a, 16);
  load_matrix_sync(fb, b, 16);
  mma_sync(acc, fa, fb, acc);
  store_matrix_sync(c, acc, 16, mem_row_major);
}

// Each thread copies into its own 12 ints of shared memory: a (16 bytes, group 0), b (8 bytes,
// group 1), c (4 bytes) and d (16 bytes, the last 8 zero-filled), both left uncommitted at first;
// out gets 9 observations per thread (see cp_async()).
__global__ void cp_async_kernel(const int* src, int* out) {
  __shared__ __align__(16) int buf[12 * 64];
  const int t = threadIdx.x;
  int *a = buf + 12 * t, *b = a + 4, *c = a + 6, *d = a + 8;
  const int* s = src + 12 * t;
  int* o = out + 9 * (blockIdx.x * blockDim.x + t);
  for (int i = 0; i < 12; i++) a[i] = -1;
  __pipeline_memcpy_async(a, s, 16);
  __pipeline_commit();
  __pipeline_memcpy_async(b, s + 4, 8);
  __pipeline_commit();
  o[0] = a[0];  // issued and committed, not waited for
  __pipeline_wait_prior(1);
  o[1] = a[3];  // group 0 retired
  o[2] = b[0];  // group 1 still in flight
  __pipeline_memcpy_async(c, s + 6, 4);
  __pipeline_memcpy_async(d, s + 8, 16, 8);
  __pipeline_wait_prior(0);
  o[3] = b[1];
  o[4] = c[0];  // not committed: a wait does not cover it
  __pipeline_commit();
  __pipeline_wait_prior(0);
  o[5] = c[0];
  o[6] = d[1];
  o[7] = d[2];  // zero-filled
  __syncthreads();
  o[8] = buf[12 * ((t + 1) % blockDim.x) + 3];  // another thread's copy, after its wait and a barrier
}

__global__ void cp_async_misuse_kernel(const int* src, int misaligned) {
  __shared__ __align__(16) int buf[8];
  if (misaligned)
    __pipeline_memcpy_async(buf + 2, src, 16);
  else
    __pipeline_memcpy_async(buf, src, 12);
  __pipeline_commit();
  __pipeline_wait_prior(0);
}

__global__ void add_kernel(float* x, float amount) { x[threadIdx.x] += amount; }

__global__ void misaligned_kernel(const float* x, float* out) {
  VT_CHECK_ALIGNED(x + 1, 16);
  *out = reinterpret_cast<const float4*>(x + 1)->x;
}

__global__ void deadlock_kernel() {
  if (threadIdx.x < 16)
    __syncwarp();
  else
    __syncthreads();
}

void barriers() {
  int* out;
  cudaMalloc(&out, 4 * 256 * 4);
  auto kernel = &barrier_kernel;
  VT_LAUNCH(kernel, 4, 256, 0, nullptr, out, 200);
  auto values = download(out, 4 * 200);
  bool ok = true;
  for (int b = 0; b < 4; b++)
    for (int t = 0; t < 200; t++) ok &= values[b * 200 + t] == ((t + 1) % 200) * 3;
  check(ok, "__syncthreads publishes shared writes; exited threads do not block it");
  cudaFree(out);
}

void shuffles() {
  int* out;
  const int threads = 48;  // a full warp and a partial one
  cudaMalloc(&out, threads * 6 * 4);
  auto kernel = &shuffle_kernel;
  VT_LAUNCH(kernel, 1, threads, 0, nullptr, out);
  auto v = download(out, threads * 6);
  bool xor_ok = true, down_ok = true, up_ok = true, width_ok = true;
  for (int t = 0; t < 32; t++) {
    xor_ok &= v[t * 6 + 0] == (t ^ 5);
    down_ok &= v[t * 6 + 1] == (t + 3 < 32 ? t + 3 : t);
    up_ok &= v[t * 6 + 2] == (t >= 2 ? t - 2 : t);
    width_ok &= v[t * 6 + 3] == (t & ~7) + 3;
  }
  check(xor_ok, "__shfl_xor_sync");
  check(down_ok, "__shfl_down_sync keeps its own value past the warp's end");
  check(up_ok, "__shfl_up_sync keeps its own value before lane 0");
  check(width_ok, "__shfl_sync with width 8 reads within each segment");
  check(unsigned(v[4]) == 0x49249249u, "__ballot_sync of a full warp");
  check(unsigned(v[32 * 6 + 4]) == 0x9249u, "__ballot_sync of a partial warp (16 lanes)");
  check(v[5] == 3, "__any_sync and __all_sync");
  check(v[33 * 6 + 0] == (33 ^ 5), "shuffles of the second warp stay in it");
  cudaFree(out);
}

void atomics() {
  int* counter;
  float* sum;
  int* maximum;
  cudaMalloc(&counter, 4);
  cudaMalloc(&sum, 4);
  cudaMalloc(&maximum, 4);
  cudaMemset(counter, 0, 4);
  cudaMemset(sum, 0, 4);
  cudaMemset(maximum, 0, 4);
  auto kernel = &atomic_kernel;
  VT_LAUNCH(kernel, 300, 64, 0, nullptr, counter, sum, maximum);
  check(download(counter, 1)[0] == 300 * 64, "atomicAdd (int) from concurrent blocks loses nothing");
  check(download(sum, 1)[0] == 300 * 64 * 0.5f, "atomicAdd (float) from concurrent blocks loses nothing");
  check(download(maximum, 1)[0] == 300 * 64 - 1, "atomicMax");
  cudaFree(counter);
  cudaFree(sum);
  cudaFree(maximum);
}

void shared_memory() {
  int* out;
  const int blocks = 64;
  cudaMalloc(&out, blocks * 4);
  auto kernel = &shared_isolation_kernel;
  VT_LAUNCH(kernel, blocks, 64, 16, nullptr, out);
  auto v = download(out, blocks);
  bool ok = true;
  for (int b = 0; b < blocks; b++) ok &= v[b] == b * 8;
  check(ok, "static and dynamic shared memory are per block");
  cudaFree(out);
}

void tensor_cores() {
  std::vector<__nv_bfloat16> a(256), b(256);
  std::vector<float> expected(256);
  for (int i = 0; i < 256; i++) {
    a[i] = __float2bfloat16_rn(float(i % 7) - 3);
    b[i] = __float2bfloat16_rn(float(i % 5) * 0.5f);
  }
  for (int r = 0; r < 16; r++)
    for (int c = 0; c < 16; c++) {
      float s = 1;
      for (int k = 0; k < 16; k++) s += __bfloat162float(a[r * 16 + k]) * __bfloat162float(b[c * 16 + k]);
      expected[r * 16 + c] = s;
    }
  __nv_bfloat16 *da, *db;
  float* dc;
  cudaMalloc(&da, 512);
  cudaMalloc(&db, 512);
  cudaMalloc(&dc, 1024);
  cudaMemcpy(da, a.data(), 512, cudaMemcpyHostToDevice);
  cudaMemcpy(db, b.data(), 512, cudaMemcpyHostToDevice);
  auto kernel = &wmma_kernel;
  VT_LAUNCH(kernel, 1, 32, 0, nullptr, da, db, dc);
  check(download(dc, 256) == expected, "wmma 16x16x16 bf16 (a row-major, b col-major) plus accumulator");
  cudaFree(da);
  cudaFree(db);
  cudaFree(dc);
}

void cp_async() {
  const int threads = 64, blocks = 2;  // the odd block runs its threads in reverse
  std::vector<int> host(12 * threads);
  for (int i = 0; i < int(host.size()); i++) host[i] = 100 + i;
  int *src, *out;
  cudaMalloc(&src, host.size() * 4);
  cudaMalloc(&out, blocks * threads * 9 * 4);
  cudaMemcpy(src, host.data(), host.size() * 4, cudaMemcpyHostToDevice);
  auto kernel = &cp_async_kernel;
  VT_LAUNCH(kernel, blocks, threads, 0, nullptr, src, out);
  auto v = download(out, blocks * threads * 9);
  bool before = true, older = true, newer = true, all = true, uncommitted = true, committed = true, zfill = true,
       across = true;
  for (int i = 0; i < blocks * threads; i++) {
    const int t = i % threads, *o = &v[9 * i], *s = &host[12 * t];
    before &= o[0] == -1;
    older &= o[1] == s[3];
    newer &= o[2] == -1;
    all &= o[3] == s[5];
    uncommitted &= o[4] == -1;
    committed &= o[5] == s[6];
    zfill &= o[6] == s[9] && o[7] == 0;
    across &= o[8] == host[12 * ((t + 1) % threads) + 3];
  }
  check(before, "cp.async: a read before the wait sees the old data");
  check(older && newer, "cp.async: __pipeline_wait_prior(1) retires all but the newest group");
  check(all, "cp.async: __pipeline_wait_prior(0) retires every committed group");
  check(uncommitted && committed, "cp.async: a wait does not cover copies not yet committed");
  check(zfill, "cp.async: zfill zeroes the tail of the copy");
  check(across, "cp.async: another thread's copy is seen after its wait and a barrier");
  cudaFree(src);
  cudaFree(out);
}

// Runs `launch` in a child process; true when it died of abort() with `message` on stderr.
bool aborts_with(void (*launch)(), const char* message) {
  std::fflush(stdout);
  int fds[2];
  if (pipe(fds) != 0) return false;
  const pid_t child = fork();
  if (child == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    launch();
    _exit(0);
  }
  close(fds[1]);
  std::string err;
  char chunk[256];
  for (ssize_t n; (n = read(fds[0], chunk, sizeof chunk)) > 0;) err.append(chunk, size_t(n));
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && err.find(message) != std::string::npos;
}

void launch_cp_async_misuse(int misaligned) {
  int* src;
  cudaMalloc(&src, 64);
  auto kernel = &cp_async_misuse_kernel;
  VT_LAUNCH(kernel, 1, 1, 0, nullptr, src, misaligned);
}

void cp_async_misuse() {
  check(aborts_with([] { launch_cp_async_misuse(1); },
                    "__pipeline_memcpy_async with a destination misaligned for its size 16 at"),
        "cp.async: a 16-byte copy to an address that is not a multiple of 16 aborts");
  check(aborts_with([] { launch_cp_async_misuse(0); }, "__pipeline_memcpy_async with size (4, 8 or 16 bytes) 12 at"),
        "cp.async: a 12-byte copy aborts");
}

void graphs_and_errors() {
  cudaStream_t stream;
  cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  float* x;
  cudaMalloc(&x, 32 * 4);
  cudaMemset(x, 0, 32 * 4);
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  auto kernel = &add_kernel;
  cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
  VT_LAUNCH(kernel, 1, 32, 0, stream, x, 1.5f);
  check(download(x, 1)[0] == 0.0f, "a captured launch does not run");
  cudaStreamEndCapture(stream, &graph);
  check(graph == nullptr, "a synchronous copy invalidates the capture");
  cudaGetLastError();
  cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
  VT_LAUNCH(kernel, 1, 32, 0, stream, x, 1.5f);
  check(cudaStreamEndCapture(stream, &graph) == cudaSuccess && graph, "a clean capture ends with a graph");
  cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphLaunch(exec, stream);
  cudaGraphLaunch(exec, stream);
  check(download(x, 32)[31] == 3.0f, "each graph launch replays the launch");
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  VT_LAUNCH(kernel, 1, 2048, 0, stream, x, 1.0f);
  check(cudaGetLastError() == cudaErrorInvalidConfiguration, "a block of 2048 threads is an invalid configuration");
  check(cudaGetLastError() == cudaSuccess, "cudaGetLastError clears the error");
  int* out;
  cudaMalloc(&out, 4);
  auto big = &shared_isolation_kernel;
  VT_LAUNCH(big, 1, 32, 64 * 1024, stream, out);
  check(cudaGetLastError() == cudaErrorLaunchOutOfResources, "64 KiB of dynamic shared memory needs the opt-in");
  cudaFuncSetAttribute(big, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024);
  VT_LAUNCH(big, 1, 32, 64 * 1024, stream, out);
  check(cudaGetLastError() == cudaSuccess && download(out, 1)[0] == 0, "after cudaFuncSetAttribute it launches");
  cudaFree(out);
  cudaFree(x);
  cudaStreamDestroy(stream);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "deadlock") == 0) {
    auto kernel = &deadlock_kernel;
    VT_LAUNCH(kernel, 1, 32, 0, nullptr);
    std::printf("the deadlocked launch returned\n");
    return 0;
  }
  if (argc > 1 && std::strcmp(argv[1], "misaligned") == 0) {
    float* x;
    cudaMalloc(&x, 64);
    auto kernel = &misaligned_kernel;
    VT_LAUNCH(kernel, 1, 1, 0, nullptr, x, x);
    std::printf("the misaligned launch returned\n");
    return 0;
  }
  cp_async_misuse();  // first: no OpenMP thread may exist when it forks
  barriers();
  shuffles();
  atomics();
  shared_memory();
  tensor_cores();
  cp_async();
  graphs_and_errors();
  if (failures) {
    std::printf("%d of %d checks failed\n", failures, checks);
    return 1;
  }
  std::printf("ok %d checks\n", checks);
  return 0;
}
