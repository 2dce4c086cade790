// nvcuda::wmma in the emulation. A fragment's element layout across lanes is unspecified in
// CUDA, so here every lane holds the whole tile (element (r, c) at x[r * cols + c]) and does the
// whole multiply: redundant, but exact and lane-independent. Loads and stores synchronize the
// warp, as the warp-collective CUDA calls do, so data other lanes just wrote is seen.
#pragma once

namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  static constexpr int rows = std::is_same_v<Use, matrix_b> ? K : M;
  static constexpr int cols = std::is_same_v<Use, matrix_a> ? K : N;
  static constexpr int num_elements = rows * cols;
  T x[num_elements];
};

namespace detail {
inline float to_f32(float v) { return v; }
inline float to_f32(__half v) { return __half2float(v); }
inline float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }
template <class T>
T from_f32(float v);
template <>
inline float from_f32<float>(float v) {
  return v;
}
template <>
inline __half from_f32<__half>(float v) {
  return __float2half_rn(v);
}
template <>
inline __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
}  // namespace detail

template <class Use, int M, int N, int K, class T, class Layout, class V>
void fill_fragment(fragment<Use, M, N, K, T, Layout>& f, const V& value) {
  for (auto& e : f.x) e = value;
}

// Matrix operands: the layout is part of the fragment type.
template <class Use, int M, int N, int K, class T, class Layout>
void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const T* p, unsigned ldm) {
  static_assert(std::is_same_v<Layout, row_major> || std::is_same_v<Layout, col_major>);
  using F = fragment<Use, M, N, K, T, Layout>;
  __syncwarp();
  for (int r = 0; r < F::rows; r++)
    for (int c = 0; c < F::cols; c++)
      f.x[r * F::cols + c] = std::is_same_v<Layout, row_major> ? p[size_t(r) * ldm + c] : p[size_t(c) * ldm + r];
}

// Accumulators: the layout is an argument.
template <int M, int N, int K, class T>
void load_matrix_sync(fragment<accumulator, M, N, K, T>& f, const T* p, unsigned ldm, layout_t layout) {
  __syncwarp();
  for (int r = 0; r < M; r++)
    for (int c = 0; c < N; c++)
      f.x[r * N + c] = layout == mem_row_major ? p[size_t(r) * ldm + c] : p[size_t(c) * ldm + r];
}

template <int M, int N, int K, class T>
void store_matrix_sync(T* p, const fragment<accumulator, M, N, K, T>& f, unsigned ldm, layout_t layout) {
  for (int r = 0; r < M; r++)
    for (int c = 0; c < N; c++)
      (layout == mem_row_major ? p[size_t(r) * ldm + c] : p[size_t(c) * ldm + r]) = f.x[r * N + c];
  __syncwarp();
}

template <int M, int N, int K, class TA, class LA, class TB, class LB, class TC>
void mma_sync(fragment<accumulator, M, N, K, TC>& d, const fragment<matrix_a, M, N, K, TA, LA>& a,
              const fragment<matrix_b, M, N, K, TB, LB>& b, const fragment<accumulator, M, N, K, TC>& c) {
  float result[M * N];
  for (int r = 0; r < M; r++)
    for (int col = 0; col < N; col++) {
      float sum = detail::to_f32(c.x[r * N + col]);
      for (int k = 0; k < K; k++) sum += detail::to_f32(a.x[r * K + k]) * detail::to_f32(b.x[k * N + col]);
      result[r * N + col] = sum;
    }
  for (int i = 0; i < M * N; i++) d.x[i] = detail::from_f32<TC>(result[i]);
}

}  // namespace nvcuda::wmma
