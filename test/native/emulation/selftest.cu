// Checks of the CUDA emulation itself (cuda/emu/), run by test/native/emulation.test.ts: the rules
// the kernels of cuda/gpu/ rely on, each in a small kernel compared with what CUDA guarantees.
// `selftest` runs every check and prints "ok <n> checks" (exit 0) or the failures (exit 1);
// `selftest deadlock` launches a kernel whose threads wait at barriers the others never reach,
// which the emulation must report and abort on instead of hanging; `selftest misaligned` one
// whose 16-byte load is misaligned, which a GPU faults on and the emulation must too.
#include <cstdio>
#include <cstring>
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

__global__ void add_kernel(float* x, float amount) { x[threadIdx.x] += amount; }

__global__ void misaligned_kernel(const float* x, float* out) {
  VT_CHECK_ALIGNED(x + 1, 16);
  *out = reinterpret_cast<const float4*>(x + 1)->x;
}

__global__ void deadlock_kernel() {
  if (threadIdx.x < 16) __syncwarp();
  else __syncthreads();
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
  barriers();
  shuffles();
  atomics();
  shared_memory();
  tensor_cores();
  graphs_and_errors();
  if (failures) {
    std::printf("%d of %d checks failed\n", failures, checks);
    return 1;
  }
  std::printf("ok %d checks\n", checks);
  return 0;
}
