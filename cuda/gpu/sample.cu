// vt_sample on the GPU: one token per row from the tempered softmax filtered by min_p, top_k and
// top_p, drawn by inverse CDF in vocabulary order (semantics: vllm_ts.h, src/reference/sample.ts).
//
// Design. A row goes to one block (up to 1024 threads; a decode batch has one row per sequence).
// No sorting: every filter keeps the tokens whose unnormalized weight e_i = exp((l_i - max) / T)
// (in [0, 1], the maximum exactly 1) is at or above a threshold, so the kept set is {e >= t} for
// one t, found exactly by bisection over the 32-bit patterns of non-negative floats (ordered as
// the floats are):
//   min_p: t = min_p (p >= min_p * max(p) <=> e >= min_p);
//   top_k: the largest t with count(e >= t) >= k, i.e. the k-th largest weight;
//   top_p: the largest t with mass(e >= t) >= top_p * (mass of the survivors).
// Each bisection step is a block reduction of (count, mass) over e >= mid, ~30 steps per filter.
// Weights are recomputed from the logits at every pass (no scratch memory, so the op is
// capturable; a 150k row is 300-600 KB and stays in L2 between passes) until the band of
// weights between the bisection's bounds fits in shared memory (kBandCapacity, 32 KB): one pass
// then copies the band there and later steps reduce over it only; once at most blockDim weights
// remain between the bounds, one step ranks each against the others and ends the search. A
// 150k row with top_k and top_p thus costs ~10 passes over the logits instead of ~60, and ~15
// block reductions instead of ~60.
// The draw: each thread sums the kept weights of its contiguous chunk of the vocabulary, a block
// scan of those sums finds the chunk where the running mass first exceeds uniform * total, and
// the whole block scans that chunk element by element to find the token.
// Bound: L2 bandwidth and expf throughput (each pass is a load, a subtract, a multiply and an
// expf per element); the bisection's reductions are a few microseconds per step.
#include <cmath>

#include "checks.h"
#include "common.cuh"

namespace vt::gpu {
namespace {

constexpr int kMaxThreads = 1024;
// Weights kept in shared memory once a bisection's band is this small (32 KB).
constexpr int kBandCapacity = 8192;
// The bit pattern just above 1.0f: no weight reaches it, so count and mass there are 0.
constexpr unsigned kAboveOne = 0x3F800001u;
constexpr unsigned kFullMask = 0xffffffffu;

// The tokens at or above a threshold: how many, and their weight.
struct Stats {
  float mass;
  int count;
};

__device__ __forceinline__ Stats warp_stats(Stats s) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    s.mass += __shfl_xor_sync(kFullMask, s.mass, offset);
    s.count += __shfl_xor_sync(kFullMask, s.count, offset);
  }
  return s;
}

// Block sum; every thread gets the same bits (a butterfly adds the same pairs in every lane),
// so the bisection's decisions are uniform across the block. `scratch`: shared Stats[32].
__device__ __forceinline__ Stats block_stats(Stats s, Stats* scratch) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int num_warps = blockDim.x / kWarpSize;
  s = warp_stats(s);
  if (lane == 0) scratch[warp] = s;
  __syncthreads();
  Stats total = lane < num_warps ? scratch[lane] : Stats{0.0f, 0};
  total = warp_stats(total);
  __syncthreads();
  return total;
}

// Block min and max of two ints at once (all threads get them). `scratch`: shared int2[32].
__device__ __forceinline__ int2 block_min_max(int2 v, int2* scratch) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int num_warps = blockDim.x / kWarpSize;
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    v.x = min(v.x, __shfl_xor_sync(kFullMask, v.x, offset));
    v.y = max(v.y, __shfl_xor_sync(kFullMask, v.y, offset));
  }
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  int2 r = lane < num_warps ? scratch[lane] : make_int2(INT32_MAX, -1);
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    r.x = min(r.x, __shfl_xor_sync(kFullMask, r.x, offset));
    r.y = max(r.y, __shfl_xor_sync(kFullMask, r.y, offset));
  }
  __syncthreads();
  return r;
}

// Inclusive prefix sum in thread order; *total gets the block's sum. `scratch`: shared float[32].
__device__ __forceinline__ float block_inclusive_sum(float v, float* scratch, float* total) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int num_warps = blockDim.x / kWarpSize;
#pragma unroll
  for (int offset = 1; offset < kWarpSize; offset *= 2) {
    const float before = __shfl_up_sync(kFullMask, v, offset);
    if (lane >= offset) v += before;
  }
  if (lane == kWarpSize - 1) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    float w = lane < num_warps ? scratch[lane] : 0.0f;
#pragma unroll
    for (int offset = 1; offset < kWarpSize; offset *= 2) {
      const float before = __shfl_up_sync(kFullMask, w, offset);
      if (lane >= offset) w += before;
    }
    scratch[lane] = w;
  }
  __syncthreads();
  const float inclusive = v + (warp > 0 ? scratch[warp - 1] : 0.0f);
  *total = scratch[num_warps - 1];
  __syncthreads();
  return inclusive;
}

// The row's weights e_i = exp((l_i - max) / T), computed identically at every pass so that all
// passes agree on every comparison. The reciprocal keeps the maximum's weight at exp(0) = 1
// (clamped so a subnormal temperature stays finite); a NaN logit weighs 0.
template <class T>
struct RowWeights {
  const T* row;
  float max, inv_t;

  __device__ __forceinline__ float operator()(int i) const {
    const float w = expf((to_float(row[i]) - max) * inv_t);
    return w >= 0.0f ? fminf(w, 1.0f) : 0.0f;
  }
};

// Count and mass of the weights >= t over the whole row.
template <class T>
__device__ __forceinline__ Stats row_stats(const RowWeights<T>& weight, int vocab, float t, Stats* scratch) {
  Stats s{0.0f, 0};
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float w = weight(i);
    if (w >= t) {
      s.mass += w;
      s.count++;
    }
  }
  return block_stats(s, scratch);
}

// Count and mass of the band's weights >= t.
__device__ __forceinline__ Stats band_stats(const float* band, int size, float t, Stats* scratch) {
  Stats s{0.0f, 0};
  for (int j = threadIdx.x; j < size; j += blockDim.x)
    if (band[j] >= t) {
      s.mass += band[j];
      s.count++;
    }
  return block_stats(s, scratch);
}

// The band kept in shared memory, read like the row.
struct BandWeights {
  const float* band;
  __device__ __forceinline__ float operator()(int i) const { return band[i]; }
};

// Copies the weights source(0 .. n-1) with lo <= bits < hi to dst (in no particular order) and
// their number to *size: a warp reserves its slots with one shared atomic per step, lanes take
// them in lane order. The caller knows the count fits in `capacity`.
template <class Source>
__device__ __forceinline__ void gather(const Source& source, int n, unsigned lo, unsigned hi, float* dst, int capacity,
                                       int* size) {
  if (threadIdx.x == 0) *size = 0;
  __syncthreads();
  const int lane = threadIdx.x % kWarpSize;
  for (int base = 0; base < n; base += blockDim.x) {  // the same trip count in every lane
    const int i = base + threadIdx.x;
    float w = 0.0f;
    bool inside = false;
    if (i < n) {
      w = source(i);
      const unsigned bits = __float_as_uint(w);
      inside = bits >= lo && bits < hi;
    }
    const unsigned ballot = __ballot_sync(kFullMask, inside);
    if (ballot != 0) {
      int slot = 0;
      if (lane == 0) slot = atomicAdd(size, __popc(ballot));
      slot = __shfl_sync(kFullMask, slot, 0) + __popc(ballot & ((1u << lane) - 1u));
      if (inside && slot < capacity) dst[slot] = w;
    }
  }
  __syncthreads();
}

struct Shared {
  ArgmaxScratch argmax;
  Stats stats[kWarpSize];
  int2 min_max[kWarpSize];
  float sums[kWarpSize];
  float band[kBandCapacity];
  int band_size;
  float candidates[kMaxThreads];
  int candidate_count;
  Stats winner;
  float chunk_prefix[kMaxThreads];
};

// A filter on thresholds: accepts t when count(e >= t) >= k, or mass(e >= t) >= target.
struct Filter {
  bool by_mass;
  int k;
  float target;
  __device__ __forceinline__ bool accepts(const Stats& s) const { return by_mass ? s.mass >= target : s.count >= k; }
};

// The end of a bisection once at most blockDim weights lie in [lo, hi): they are the candidate
// thresholds, and each thread ranks one against the others (count and mass of those >= it, plus
// at_hi for everything >= hi) so one max-reduction finds the largest accepted one, instead of
// ~20 more reduction steps. Updates *lo and *at_lo when a candidate above lo is accepted.
__device__ __forceinline__ void rank_candidates(const Filter& filter, unsigned* lo, Stats* at_lo, Stats at_hi,
                                                Shared& sh) {
  const int m = sh.candidate_count;
  int best = -1;
  Stats mine{0.0f, 0};
  for (int j = threadIdx.x; j < m; j += blockDim.x) {
    const float v = sh.candidates[j];
    Stats s = at_hi;
    for (int i = 0; i < m; i++)  // the same order in every thread: tied values get the same bits
      if (sh.candidates[i] >= v) {
        s.mass += sh.candidates[i];
        s.count++;
      }
    const int bits = int(__float_as_uint(v));
    if (filter.accepts(s) && bits > best) {
      best = bits;
      mine = s;
    }
  }
  const int winner = block_min_max(make_int2(INT32_MAX, best), sh.min_max).y;
  if (winner > int(*lo)) {
    if (best == winner) sh.winner = mine;  // every owner writes the same bits
    __syncthreads();
    *lo = unsigned(winner);
    *at_lo = sh.winner;
    __syncthreads();
  }
}

// The largest threshold (as bits) in [lo, 1] that the filter accepts. On entry it accepts lo,
// whose statistics are *at_lo; on return *at_lo holds the answer's. Steps reduce over the whole
// row until the weights in [lo, hi) fit the shared band, then over the band, and end with
// rank_candidates once they fit one per thread (or when lo and hi meet: many tied weights).
template <class T>
__device__ __forceinline__ unsigned bisect(const RowWeights<T>& weight, int vocab, unsigned lo, Stats* at_lo,
                                           const Filter& filter, Shared& sh) {
  unsigned hi = kAboveOne;  // never accepted: nothing weighs more than 1
  Stats at_hi{0.0f, 0};
  bool in_band = false;
  Stats above_band{0.0f, 0};
  while (hi - lo > 1) {
    const int between = at_lo->count - at_hi.count;  // weights in [lo, hi)
    if (between <= int(blockDim.x)) {
      if (in_band)
        gather(BandWeights{sh.band}, sh.band_size, lo, hi, sh.candidates, kMaxThreads, &sh.candidate_count);
      else
        gather(weight, vocab, lo, hi, sh.candidates, kMaxThreads, &sh.candidate_count);
      rank_candidates(filter, &lo, at_lo, at_hi, sh);
      break;
    }
    if (!in_band && between <= kBandCapacity) {
      gather(weight, vocab, lo, hi, sh.band, kBandCapacity, &sh.band_size);
      in_band = true;
      above_band = at_hi;
    }
    // top_k from 0 first asks whether k weights are positive at all: with a low temperature
    // most weights underflow to 0, and bisecting down to the tie at 0 would take ~30 steps.
    const bool probe_zero = !filter.by_mass && lo == 0 && hi == kAboveOne;
    const unsigned mid = probe_zero ? 1u : lo + (hi - lo) / 2;
    Stats s;
    if (in_band) {
      s = band_stats(sh.band, sh.band_size, __uint_as_float(mid), sh.stats);
      s.mass += above_band.mass;
      s.count += above_band.count;
    } else {
      s = row_stats(weight, vocab, __uint_as_float(mid), sh.stats);
    }
    if (filter.accepts(s)) {
      lo = mid;
      *at_lo = s;
    } else {
      hi = mid;
      at_hi = s;
    }
  }
  return lo;
}

template <class T>
__global__ void __launch_bounds__(kMaxThreads, 1)
    sample_kernel(const T* __restrict__ logits, int vocab, const float* __restrict__ temperatures,
                  const int32_t* __restrict__ top_k, const float* __restrict__ top_p, const float* __restrict__ min_p,
                  const float* __restrict__ uniforms, int32_t* __restrict__ out) {
  __shared__ Shared sh;
  const int r = blockIdx.x;
  const T* row = logits + size_t(r) * vocab;

  // Pass 1: the maximum and the argmax (the answer of greedy rows).
  float best = -INFINITY;
  int32_t best_index = INT32_MAX;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) keep_best(to_float(row[i]), i, best, best_index);
  block_argmax(best, best_index, sh.argmax);
  const int argmax = best_index == INT32_MAX ? 0 : best_index;  // an all-NaN row: 0, as vt_argmax
  const float temperature = temperatures[r];
  // Greedy rows, and rows without a finite maximum (all -inf, or +inf present). Uniform per block.
  if (!(temperature > 0.0f) || !(fabsf(best) <= FLT_MAX)) {
    if (threadIdx.x == 0) out[r] = argmax;
    return;
  }
  const RowWeights<T> weight{row, best, 1.0f / fmaxf(temperature, FLT_MIN)};

  // The threshold of the filters, as the bits of a non-negative float.
  const float row_min_p = min_p[r], row_top_p = top_p[r];
  const int row_top_k = top_k[r];
  unsigned lo = __float_as_uint(row_min_p > 0.0f ? fminf(row_min_p, 1.0f) : 0.0f);
  const bool use_k = row_top_k > 0 && row_top_k < vocab;
  const bool use_p = row_top_p < 1.0f;
  if (use_k || use_p) {
    Stats at_lo = row_stats(weight, vocab, __uint_as_float(lo), sh.stats);
    // Fewer survivors than k: top_k keeps them all.
    if (use_k && at_lo.count > row_top_k) lo = bisect(weight, vocab, lo, &at_lo, Filter{false, row_top_k, 0.0f}, sh);
    // top_p <= 0 gives target <= 0, which every threshold reaches: the bisection ends at the
    // largest weight, 1, as the contract's "most likely tokens" reading wants.
    if (use_p) lo = bisect(weight, vocab, lo, &at_lo, Filter{true, 0, row_top_p * at_lo.mass}, sh);
  }
  const float threshold = __uint_as_float(lo);

  // The draw, pass A: kept mass of each thread's contiguous chunk, scanned over the block.
  const int chunk = (vocab + blockDim.x - 1) / blockDim.x;
  const int begin = min(int(threadIdx.x) * chunk, vocab), end = min(begin + chunk, vocab);
  float chunk_mass = 0.0f;
  for (int i = begin; i < end; i++) {
    const float w = weight(i);
    if (w >= threshold) chunk_mass += w;
  }
  float unused;
  sh.chunk_prefix[threadIdx.x] = block_inclusive_sum(chunk_mass, sh.sums, &unused);
  __syncthreads();
  // The chunks' inclusive prefixes partition [0, total): the first above the target holds the
  // token; when rounding (or a uniform >= 1) puts the target past them all, the last chunk with
  // mass gives its last kept token. Both picks are uniform block-wide decisions.
  const float total = sh.chunk_prefix[blockDim.x - 1];
  const float target = uniforms[r] * total;
  // (A chunk without mass is never picked: a scan's rounding may lift its prefix by an ulp.)
  const bool has_mass = chunk_mass > 0.0f;
  const int2 pick =
      block_min_max(make_int2(has_mass && sh.chunk_prefix[threadIdx.x] > target ? int(threadIdx.x) : INT32_MAX,
                              has_mass ? int(threadIdx.x) : -1),
                    sh.min_max);
  const int c = pick.x != INT32_MAX ? pick.x : pick.y;
  if (c < 0) {  // no kept mass at all (cannot happen: the maximum weighs 1); keep the argmax
    if (threadIdx.x == 0) out[r] = argmax;
    return;
  }

  // Pass B: the block scans chunk c in rounds of blockDim elements (one round for vocabularies
  // up to blockDim^2), carrying the running mass from the chunks before it; the first kept
  // token whose running mass exceeds the target wins, else (rounding) the chunk's last one.
  float carry = c > 0 ? sh.chunk_prefix[c - 1] : 0.0f;
  const int chunk_begin = c * chunk, chunk_end = min(chunk_begin + chunk, vocab);
  int found = INT32_MAX, last = -1;
  for (int base = chunk_begin; base < chunk_end; base += blockDim.x) {
    const int i = base + threadIdx.x;
    float w = 0.0f;
    if (i < chunk_end) {
      w = weight(i);
      if (!(w >= threshold)) w = 0.0f;
    }
    float round_mass;
    const float running = carry + block_inclusive_sum(w, sh.sums, &round_mass);
    if (w > 0.0f) {
      last = i;
      if (running > target) found = min(found, i);
    }
    carry += round_mass;
  }
  const int2 token = block_min_max(make_int2(found, last), sh.min_max);
  if (threadIdx.x == 0) out[r] = token.x != INT32_MAX ? token.x : token.y >= 0 ? token.y : argmax;
}

}  // namespace
}  // namespace vt::gpu

using namespace vt::gpu;

extern "C" {

vt_status vt_sample(vt_context* ctx, const void* logits, int32_t num_rows, int32_t vocab_size, vt_dtype act_dtype,
                    const float* temperatures, const int32_t* top_k, const float* top_p, const float* min_p,
                    const float* uniforms, int32_t* out) {
  const char* op = "vt_sample";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_storage_dtype(op, "act_dtype", act_dtype));
  VT_TRY(vt::check_sample_args(op, logits, out, num_rows, vocab_size, temperatures, top_k, top_p, min_p, uniforms));
  if (num_rows == 0) return vt::ok();
  // About 8 elements per thread at least, so small vocabularies do not pay for idle warps in
  // every reduction; a multiple of the warp size, at most 1024.
  const size_t warps = ceil_div(size_t(vocab_size), 8 * kWarpSize);
  const int threads = int(std::min<size_t>(kMaxThreads, std::max<size_t>(1, warps) * kWarpSize));
  with_dtype(act_dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    auto kernel = &sample_kernel<T>;
    VT_LAUNCH(kernel, unsigned(num_rows), threads, 0, ctx->stream, static_cast<const T*>(logits), vocab_size,
              temperatures, top_k, top_p, min_p, uniforms, out);
  });
  return launch_status(op);
}

}  // extern "C"
