// cuBLAS for vt_matmul's 16-bit path, found at run time: the build machine has no cuBLAS (no
// headers, no library), and a machine that has none must still run our own kernels. So the
// library is dlopen'ed when a context is created, only the six functions used here are looked
// up, and their prototypes and enum values are declared below (values of cublas_api.h and
// library_types.h). Anything missing or failing means "no cuBLAS": blas_open returns null and
// vt_matmul runs the kernels of gemv.cuh / gemm_tensor_core.cuh instead.
//
// VT_DISABLE_CUBLAS=1 (any non-empty value but "0") also returns null, so tests and benchmarks
// can compare the two on one machine. The emulation build never loads cuBLAS: its "device"
// pointers and streams are host objects cuBLAS cannot use.
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "blas.cuh"

namespace {

// ---- the part of the cuBLAS C API used here ----------------------------------------------------
// cublasHandle_t is a pointer to an opaque struct; cublasStatus_t and the enums are C enums,
// passed as int.
using BlasHandle = void*;
using BlasStatus = int;
constexpr BlasStatus kBlasSuccess = 0;  // CUBLAS_STATUS_SUCCESS
constexpr int kOpN = 0;                 // CUBLAS_OP_N
constexpr int kOpT = 1;                 // CUBLAS_OP_T
constexpr int kDataF16 = 2;             // CUDA_R_16F
constexpr int kDataBF16 = 14;           // CUDA_R_16BF
constexpr int kCompute32F = 68;         // CUBLAS_COMPUTE_32F (f32 accumulation, no TF32 tricks)
// CUBLAS_COMPUTE_32F_PEDANTIC, for out = x.w^T + bias (beta = 1): measured on an H200, the default
// 16-bit path rounds the product to the output type before adding C, an ulp off where the ABI
// promises one rounding of the f32 sum; the pedantic type keeps the epilogue in f32.
constexpr int kCompute32FPedantic = 69;
constexpr int kGemmDefault = -1;  // CUBLAS_GEMM_DEFAULT
// CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION: by default cuBLAS may
// sum split-K partial products in the output's 16-bit type, which costs up to an ulp or two on
// small outputs (seen on an H200 at 64 x 64); the ABI promises f32 accumulation rounded once.
constexpr int kMathF32Reductions = 16;

using CreateFn = BlasStatus (*)(BlasHandle*);                      // cublasCreate_v2
using DestroyFn = BlasStatus (*)(BlasHandle);                      // cublasDestroy_v2
using SetStreamFn = BlasStatus (*)(BlasHandle, cudaStream_t);      // cublasSetStream_v2
using SetWorkspaceFn = BlasStatus (*)(BlasHandle, void*, size_t);  // cublasSetWorkspace_v2
using SetMathModeFn = BlasStatus (*)(BlasHandle, int);             // cublasSetMathMode
using GemmExFn = BlasStatus (*)(BlasHandle, int transa, int transb, int m, int n, int k, const void* alpha,
                                const void* a, int a_type, int lda, const void* b, int b_type, int ldb,
                                const void* beta, void* c, int c_type, int ldc, int compute_type,
                                int algo);  // cublasGemmEx

// A workspace of our own, set once: without one cuBLAS may allocate inside a call, which a CUDA
// graph capture does not allow. 32 MiB is what NVIDIA recommends for Hopper (4 MiB is enough
// before it); it is allocated once per context.
constexpr size_t kWorkspaceBytes = size_t(32) << 20;

// out[i, :] = bias for every row: cuBLAS then adds the product to it (beta = 1). The bias is
// stored in the output's dtype already, so this adds no rounding: with the pedantic compute type
// cuBLAS computes acc + 1 * bias in f32 and rounds once, as our kernels do.
template <class T>
__global__ void broadcast_bias_kernel(const T* __restrict__ bias, T* __restrict__ out, size_t count, int n) {
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) out[i] = bias[i % size_t(n)];
}

}  // namespace

namespace vt::gpu {

struct Blas {
  void* library;  // the dlopen handle (kept open: see blas_close)
  BlasHandle handle;
  void* workspace;
  DestroyFn destroy;
  GemmExFn gemm_ex;
};

Blas* blas_open(cudaStream_t stream) {
#if !defined(__CUDACC__)
  (void)stream;
  return nullptr;
#else
  const char* disable = std::getenv("VT_DISABLE_CUBLAS");
  if (disable && *disable && std::strcmp(disable, "0") != 0) return nullptr;
  void* library = nullptr;
  for (const char* name : {"libcublas.so.13", "libcublas.so.12"})
    if ((library = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
  if (!library) return nullptr;
  auto create = reinterpret_cast<CreateFn>(dlsym(library, "cublasCreate_v2"));
  auto destroy = reinterpret_cast<DestroyFn>(dlsym(library, "cublasDestroy_v2"));
  auto set_stream = reinterpret_cast<SetStreamFn>(dlsym(library, "cublasSetStream_v2"));
  auto set_workspace = reinterpret_cast<SetWorkspaceFn>(dlsym(library, "cublasSetWorkspace_v2"));
  auto set_math_mode = reinterpret_cast<SetMathModeFn>(dlsym(library, "cublasSetMathMode"));
  auto gemm_ex = reinterpret_cast<GemmExFn>(dlsym(library, "cublasGemmEx"));
  if (!create || !destroy || !set_stream || !set_workspace || !set_math_mode || !gemm_ex) {
    dlclose(library);
    return nullptr;
  }
  BlasHandle handle = nullptr;
  if (create(&handle) != kBlasSuccess) return nullptr;  // cuBLAS initialised CUDA: keep it mapped
  void* workspace = nullptr;
  if (cudaMalloc(&workspace, kWorkspaceBytes) != cudaSuccess) {
    cudaGetLastError();  // not sticky; do not let the next op's launch_status report it
    destroy(handle);
    return nullptr;
  }
  // The stream first: cublasSetStream resets the workspace to cuBLAS's own pool.
  Blas* blas = nullptr;
  if (set_stream(handle, stream) == kBlasSuccess && set_workspace(handle, workspace, kWorkspaceBytes) == kBlasSuccess &&
      set_math_mode(handle, kMathF32Reductions) == kBlasSuccess)
    blas = new (std::nothrow) Blas{library, handle, workspace, destroy, gemm_ex};
  if (!blas) {
    destroy(handle);
    cudaFree(workspace);
  }
  return blas;
#endif
}

// The library stays loaded: unloading cuBLAS while the CUDA runtime still holds the modules it
// registered is a known source of crashes at exit, and a later context dlopens it again anyway.
void blas_close(Blas* blas) {
  if (!blas) return;
  blas->destroy(blas->handle);
  cudaFree(blas->workspace);
  delete blas;
}

vt_status blas_matmul(Blas* blas, cudaStream_t stream, const void* x, const void* w, const void* bias, void* out, int m,
                      int n, int k, vt_dtype dtype) {
  const char* op = "vt_matmul";
  float alpha = 1.0f, beta = 0.0f;
  if (bias) {
    const size_t count = size_t(m) * size_t(n);
    const unsigned blocks = ceil_div(count, 256) < 4096 ? ceil_div(count, 256) : 4096;
    with_dtype(dtype, [&](auto tag) {
      using T = typename decltype(tag)::type;
      auto kernel = &broadcast_bias_kernel<T>;
      VT_LAUNCH(kernel, blocks, 256, 0, stream, static_cast<const T*>(bias), static_cast<T*>(out), count, n);
    });
    VT_TRY(launch_status(op));
    beta = 1.0f;
  }
  // Row-major out[m, n] = x . w^T is, read column-major, out^T (n x m) = w (n x k, stored as the
  // column-major k x n matrix w^T, hence OP_T) times x^T (k x m, column-major as stored).
  const int type = dtype == VT_F16 ? kDataF16 : kDataBF16;
  const BlasStatus status = blas->gemm_ex(blas->handle, kOpT, kOpN, n, m, k, &alpha, w, type, k, x, type, k, &beta, out,
                                          type, n, bias ? kCompute32FPedantic : kCompute32F, kGemmDefault);
  if (status != kBlasSuccess)
    return fail(VT_ERR_DEVICE, std::string(op) + ": cublasGemmEx failed with cuBLAS status " + std::to_string(status));
  return ok();
}

}  // namespace vt::gpu
