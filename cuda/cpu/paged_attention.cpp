// Attention over the paged KV cache for a batch mixing decodes and prefill chunks.
//
// Parallelisation: a task is (sequence, KV head, tile of query tokens). It owns the output rows of
// every query head of the KV head's group for every token of its tile, so each K and V row it
// reads is loaded (and converted to f32) once for up to kTileRows rows. Tasks go to threads
// dynamically, costliest first, since a long prefill tile may cost a thousand decodes.
// Bound: a decode task (one token, a group of rows) streams its K/V once and is memory-bound; a
// prefill tile reuses each K/V row for many rows and is compute-bound in the q.k dot products and
// the V accumulation, both vectorised over head_dim.
// Softmax is online (flash-attention style): one pass over the context in chunks of kChunkKeys
// keys (read through the block table key by key, so chunks may span blocks), carrying per row the
// running maximum, the running sum of exponentials and the unnormalised output, all in f32.
// Where head_dim is whole vectors, the products read K and V straight from the cache in its dtype
// (widened in registers); otherwise each chunk's rows are first converted to zero-padded f32.
#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "checks.h"
#include "common.h"
#include "op.h"
#include "simd.h"

namespace {

using namespace vt::simd;

constexpr int kTileRows = 32;   // query rows (tokens x heads of a group) a task aims for
constexpr int kChunkKeys = 32;  // keys per step: their K, V and scores stay in L1
constexpr int kScoreStride = round_up(kChunkKeys);

struct Problem {
  float* out;
  const float* q;
  const void* k_cache;
  const void* v_cache;
  const int32_t* block_tables;
  const int32_t* seq_lens;
  const int32_t* query_start_loc;
  int32_t max_blocks_per_seq, num_q_heads, num_kv_heads, head_dim, q_row_stride, block_size, sliding_window;
  float scale;
  float soft_cap;  // 0: off
  vt_dtype cache_dtype;
  int32_t group;       // query heads per KV head
  int32_t padded_dim;  // head_dim rounded up to whole vectors

  int32_t query_len(int32_t seq) const { return query_start_loc[seq + 1] - query_start_loc[seq]; }
  // Position of the sequence's first query token: the context before it is already cached.
  int32_t first_position(int32_t seq) const { return seq_lens[seq] - query_len(seq); }
  // The first key a query token at `position` attends to.
  int32_t window_start(int32_t position) const {
    return sliding_window > 0 ? std::max(0, position - sliding_window + 1) : 0;
  }
};

struct Task {
  int32_t seq, kv_head, first_token, end_token;  // tokens relative to the sequence's first query
  int64_t cost;                                  // rows x keys, to hand out the longest first
};

// A thread's working set for one task, reused across its tasks.
struct Scratch {
  std::vector<float> q, acc, scores, keys, values, row_max, row_sum, corrections;
  std::vector<const void*> key_rows, value_rows;
  std::vector<size_t> offsets, next_offsets;  // cache elements of this chunk's keys, and the next's
  Scratch(int rows, int padded_dim)
      : q(size_t(rows) * padded_dim),
        acc(size_t(rows) * padded_dim),
        scores(size_t(rows) * kScoreStride),
        keys(size_t(kChunkKeys) * padded_dim),
        values(size_t(kChunkKeys) * padded_dim),
        row_max(rows),
        row_sum(rows),
        corrections(rows),
        key_rows(kChunkKeys),
        value_rows(kChunkKeys),
        offsets(kChunkKeys),
        next_offsets(kChunkKeys) {}
};

// The cache element offsets of keys [first_key, first_key + count) of KV head kv_head, through the
// sequence's block table: one division per chunk, then slot by slot (K and V share them).
void cache_offsets(const Problem& p, const int32_t* block_table, int32_t first_key, int count, int kv_head,
                   size_t* offsets) {
  const size_t slot_elements = size_t(p.num_kv_heads) * p.head_dim, head = size_t(kv_head) * p.head_dim;
  int32_t block = first_key / p.block_size, in_block = first_key % p.block_size;
  for (int j = 0; j < count; j++) {
    offsets[j] = (size_t(block_table[block]) * p.block_size + in_block) * slot_elements + head;
    if (++in_block == p.block_size) {
      in_block = 0;
      block++;
    }
  }
}

// Pointers to the cache rows at `offsets`, as they are (the products widen them in registers).
void point_at_cache_rows(const Problem& p, const void* cache, const size_t* offsets, int count, const void** rows) {
  const size_t element_bytes = vt::dtype_bytes(p.cache_dtype);
  for (int j = 0; j < count; j++) rows[j] = static_cast<const char*>(cache) + offsets[j] * element_bytes;
}

// The cache rows at `offsets` converted to f32 rows of padded_dim, zero-padded, in scratch: for a
// head_dim that is not whole vectors, where reading the rows as they are would run past them.
void convert_cache_rows(const Problem& p, const void* cache, const size_t* offsets, int count, float* scratch,
                        const void** rows) {
  const int D = p.head_dim, Dp = p.padded_dim;
  for (int j = 0; j < count; j++) {
    float* dst = scratch + size_t(j) * Dp;
    int d = 0;
    for (; d < D; d++) dst[d] = vt::load(cache, p.cache_dtype, offsets[j] + d);
    for (; d < Dp; d++) dst[d] = 0.0f;
    rows[j] = dst;
  }
}

// Asks for the cache lines of the rows at `offsets` ahead of use: a head's rows are num_kv_heads *
// head_dim apart and its blocks scattered, a pattern the hardware prefetchers follow poorly.
void prefetch_cache_rows(const Problem& p, const void* cache, const size_t* offsets, int count) {
  const size_t element_bytes = vt::dtype_bytes(p.cache_dtype), row_bytes = p.head_dim * element_bytes;
  for (int j = 0; j < count; j++) {
    const char* row = static_cast<const char*>(cache) + offsets[j] * element_bytes;
    for (size_t offset = 0; offset < row_bytes; offset += 64) __builtin_prefetch(row + offset);
  }
}

// W values of a cache row (or a converted f32 row) from element d, widened to f32.
template <vt_dtype C>
inline vec load_row(const void* row, int d) {
  if constexpr (C == VT_F32)
    return load(static_cast<const float*>(row) + d);
  else if constexpr (C == VT_BF16)
    return load_bf16(static_cast<const uint16_t*>(row) + d);
  else
    return load_f16(static_cast<const uint16_t*>(row) + d);
}

// The two products below are blocked over up to 4 rows x 4 keys (scores) or 4 rows x 4 vectors
// of head_dim (output), so that each load feeds several FMAs: x86 cores issue fewer 512-bit
// loads than FMAs per cycle, and these loops would otherwise wait on loads.

// scores[r][j] = q[r] . k[j] for R rows (q and scores already offset to the first) and keys
// [0, count), four keys at a time sharing one reduction. The last group repeats its last key
// where keys run out (a row of scores has room for kChunkKeys, a multiple of 4, and softmax_step
// overwrites what lies past count): every score is then summed the same
// way wherever its chunk ends, so a token's scores do not depend on the tokens computed beside
// it (what --batch-invariant needs).
template <vt_dtype C, int R>
void score_rows(const float* q, int Dp, const void* const* key_rows, int count, float* scores) {
  for (int j = 0; j < count; j += 4) {
    const void* keys[4];
    for (int c = 0; c < 4; c++) keys[c] = key_rows[std::min(j + c, count - 1)];
    vec a[R][4];
    for (int r = 0; r < R; r++)
      for (int c = 0; c < 4; c++) a[r][c] = zero();
    for (int d = 0; d < Dp; d += W) {
      vec k[4];
      for (int c = 0; c < 4; c++) k[c] = load_row<C>(keys[c], d);
      for (int r = 0; r < R; r++) {
        vec qv = load(q + size_t(r) * Dp + d);
        for (int c = 0; c < 4; c++) a[r][c] = fma(qv, k[c], a[r][c]);
      }
    }
    for (int r = 0; r < R; r++) reduce_add4(a[r][0], a[r][1], a[r][2], a[r][3], scores + r * kScoreStride + j);
  }
}

template <vt_dtype C>
void compute_scores(const float* q, int Dp, const void* const* key_rows, int count, int row_begin, int row_end,
                    float* scores) {
  int r = row_begin;
  for (; r + 4 <= row_end; r += 4) score_rows<C, 4>(q + size_t(r) * Dp, Dp, key_rows, count, scores + r * kScoreStride);
  const float* qr = q + size_t(r) * Dp;
  float* sr = scores + r * kScoreStride;
  switch (row_end - r) {
    case 3:
      score_rows<C, 3>(qr, Dp, key_rows, count, sr);
      break;
    case 2:
      score_rows<C, 2>(qr, Dp, key_rows, count, sr);
      break;
    case 1:
      score_rows<C, 1>(qr, Dp, key_rows, count, sr);
      break;
    default:
      break;
  }
}

// Turns one row's scores into exp(score - new max) in place, keys outside [valid_begin, valid_end)
// weighing 0, and folds them into the row's running max and sum. Returns the factor that rescales
// what the row accumulated so far to the new max.
float softmax_step(float* s, int count, int valid_begin, int valid_end, float& row_max, float& row_sum) {
  for (int j = 0; j < valid_begin; j++) s[j] = -INFINITY;
  for (int j = valid_end; j < round_up(count); j++) s[j] = -INFINITY;
  vec m = set1(-INFINITY);
  for (int j = 0; j < count; j += W) m = max(m, load(s + j));
  float new_max = std::max(row_max, reduce_max(m));
  // 0 on the first chunk (row_max = -inf); usually 1 once the context's largest scores are seen.
  float correction = new_max == row_max ? 1.0f : std::exp(row_max - new_max);
  vec shift = set1(new_max), sum = zero();
  for (int j = 0; j < count; j += W) {
    vec e = exp_nonpositive(sub(load(s + j), shift));
    store(s + j, e);
    sum = add(sum, e);
  }
  row_sum = row_sum * correction + reduce_add(sum);
  row_max = new_max;
  return correction;
}

// acc[r][d0 .. d0 + NB*W) = acc[r] * corrections[r] + sum_j weights[r][j] * v[j] for R rows
// (acc, weights and corrections already offset to the first), all R x NB sums in registers.
template <vt_dtype C, int R, int NB>
void accumulate_block(float* acc, int Dp, const float* weights, const float* corrections, const void* const* value_rows,
                      int count, int d0) {
  vec a[R][NB];
  for (int r = 0; r < R; r++) {
    vec c = set1(corrections[r]);
    for (int b = 0; b < NB; b++) a[r][b] = mul(load(acc + size_t(r) * Dp + d0 + b * W), c);
  }
  for (int j = 0; j < count; j++) {
    vec v[NB];
    for (int b = 0; b < NB; b++) v[b] = load_row<C>(value_rows[j], d0 + b * W);
    for (int r = 0; r < R; r++) {
      vec w = set1(weights[r * kScoreStride + j]);
      for (int b = 0; b < NB; b++) a[r][b] = fma(w, v[b], a[r][b]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int b = 0; b < NB; b++) store(acc + size_t(r) * Dp + d0 + b * W, a[r][b]);
}

template <vt_dtype C, int R>
void accumulate_rows(float* acc, int Dp, const float* weights, const float* corrections, const void* const* value_rows,
                     int count) {
  int d0 = 0;
  for (; d0 + 4 * W <= Dp; d0 += 4 * W) accumulate_block<C, R, 4>(acc, Dp, weights, corrections, value_rows, count, d0);
  switch ((Dp - d0) / W) {
    case 3:
      accumulate_block<C, R, 3>(acc, Dp, weights, corrections, value_rows, count, d0);
      break;
    case 2:
      accumulate_block<C, R, 2>(acc, Dp, weights, corrections, value_rows, count, d0);
      break;
    case 1:
      accumulate_block<C, R, 1>(acc, Dp, weights, corrections, value_rows, count, d0);
      break;
    default:
      break;
  }
}

template <vt_dtype C>
void accumulate(float* acc, int Dp, const float* weights, const float* corrections, const void* const* value_rows,
                int count, int row_begin, int row_end) {
  int r = row_begin;
  auto rows = [&](auto block_rows) {
    constexpr int R = decltype(block_rows)::value;
    accumulate_rows<C, R>(acc + size_t(r) * Dp, Dp, weights + r * kScoreStride, corrections + r, value_rows, count);
  };
  for (; r + 4 <= row_end; r += 4) rows(std::integral_constant<int, 4>{});
  switch (row_end - r) {
    case 3:
      rows(std::integral_constant<int, 3>{});
      break;
    case 2:
      rows(std::integral_constant<int, 2>{});
      break;
    case 1:
      rows(std::integral_constant<int, 1>{});
      break;
    default:
      break;
  }
}

// Gemma 2's attention soft-capping, score = cap * tanh(score / cap), before the softmax, whole
// vectors at a time: lanes past `count` hold no score, and softmax_step overwrites them.
void soft_cap_scores(float* scores, int count, int row_begin, int row_end, float cap) {
  for (int r = row_begin; r < row_end; r++) {
    float* row = scores + size_t(r) * kScoreStride;
    for (int j = 0; j < count; j += W) store(row + j, soft_cap(load(row + j), cap));
  }
}

// C: the dtype the products read K and V in: the cache's, or f32 when Convert copies each chunk's
// rows to padded f32 first.
template <vt_dtype C, bool Convert>
void run_task(const Problem& p, const Task& task, Scratch& s) {
  const int G = p.group, D = p.head_dim, Dp = p.padded_dim;
  const int tokens = task.end_token - task.first_token, rows = tokens * G;
  const int32_t first_row = p.query_start_loc[task.seq] + task.first_token;  // in q and out
  const int32_t first_position = p.first_position(task.seq) + task.first_token;
  const int32_t last_position = first_position + tokens - 1;

  // Row r = token * G + head within the group; q is pre-scaled so scores need no multiply.
  for (int i = 0; i < tokens; i++)
    for (int g = 0; g < G; g++) {
      const float* src = p.q + size_t(first_row + i) * p.q_row_stride + size_t(task.kv_head * G + g) * D;
      float* dst = s.q.data() + size_t(i * G + g) * Dp;
      for (int d = 0; d < D; d++) dst[d] = src[d] * p.scale;
      for (int d = D; d < Dp; d++) dst[d] = 0.0f;
    }
  std::fill(s.acc.begin(), s.acc.begin() + size_t(rows) * Dp, 0.0f);
  std::fill(s.row_max.begin(), s.row_max.begin() + rows, -INFINITY);
  std::fill(s.row_sum.begin(), s.row_sum.begin() + rows, 0.0f);

  const int32_t* block_table = p.block_tables + size_t(task.seq) * p.max_blocks_per_seq;
  const int32_t first_key = p.window_start(first_position);
  cache_offsets(p, block_table, first_key, std::min(kChunkKeys, last_position + 1 - first_key), task.kv_head,
                s.offsets.data());
  for (int32_t key = first_key; key <= last_position; key += kChunkKeys) {
    const int32_t end = std::min(last_position + 1, key + kChunkKeys);
    const int count = end - key;
    if (end <= last_position) {
      const int next_count = std::min(last_position + 1, end + kChunkKeys) - end;
      cache_offsets(p, block_table, end, next_count, task.kv_head, s.next_offsets.data());
      prefetch_cache_rows(p, p.k_cache, s.next_offsets.data(), next_count);
      prefetch_cache_rows(p, p.v_cache, s.next_offsets.data(), next_count);
    }
    // Tokens before `key` see none of this chunk (causal); tokens whose window starts after it
    // see none either. The rest form one run of tokens.
    int token_begin = std::max(0, key - first_position), token_end = tokens;
    while (token_end > token_begin && p.window_start(first_position + token_end - 1) >= end) token_end--;
    if (token_begin < token_end) {
      if constexpr (Convert) {
        convert_cache_rows(p, p.k_cache, s.offsets.data(), count, s.keys.data(), s.key_rows.data());
        convert_cache_rows(p, p.v_cache, s.offsets.data(), count, s.values.data(), s.value_rows.data());
      } else {
        point_at_cache_rows(p, p.k_cache, s.offsets.data(), count, s.key_rows.data());
        point_at_cache_rows(p, p.v_cache, s.offsets.data(), count, s.value_rows.data());
      }
      compute_scores<C>(s.q.data(), Dp, s.key_rows.data(), count, token_begin * G, token_end * G, s.scores.data());
      if (p.soft_cap > 0.0f) soft_cap_scores(s.scores.data(), count, token_begin * G, token_end * G, p.soft_cap);
      for (int i = token_begin; i < token_end; i++) {
        const int32_t position = first_position + i;
        const int valid_begin = std::max(p.window_start(position), key) - key;
        const int valid_end = std::min(position + 1, end) - key;
        for (int r = i * G; r < (i + 1) * G; r++)
          s.corrections[r] = softmax_step(s.scores.data() + size_t(r) * kScoreStride, count, valid_begin, valid_end,
                                          s.row_max[r], s.row_sum[r]);
      }
      accumulate<C>(s.acc.data(), Dp, s.scores.data(), s.corrections.data(), s.value_rows.data(), count,
                    token_begin * G, token_end * G);
    }
    std::swap(s.offsets, s.next_offsets);
  }

  for (int i = 0; i < tokens; i++)
    for (int g = 0; g < G; g++) {
      const int r = i * G + g;
      const float inv_sum = 1.0f / s.row_sum[r];
      const float* src = s.acc.data() + size_t(r) * Dp;
      float* dst = p.out + size_t(first_row + i) * p.num_q_heads * D + size_t(task.kv_head * G + g) * D;
      for (int d = 0; d < D; d++) dst[d] = src[d] * inv_sum;
    }
}

// The index arrays are read on the host here, so every inconsistency a GPU kernel would turn into
// garbage or a fault is reported instead. Only block ids beyond the cache go unchecked (its size is
// not passed).
vt_status check_batch(const char* op, const Problem& p, int32_t num_seqs, int32_t num_tokens, int32_t max_query_len,
                      int32_t max_seq_len) {
  auto at = [](const char* name, int32_t i) { return std::string(name) + "[" + std::to_string(i) + "]"; };
  VT_REQUIRE(p.query_start_loc[0] == 0, op, "query_start_loc[0] must be 0");
  VT_REQUIRE(p.query_start_loc[num_seqs] == num_tokens, op,
             at("query_start_loc", num_seqs) + " must equal num_tokens (" + std::to_string(num_tokens) + ")");
  for (int32_t s = 0; s < num_seqs; s++) {
    int32_t q_len = p.query_len(s), seq_len = p.seq_lens[s];
    VT_REQUIRE(q_len >= 0, op, "query_start_loc decreases at sequence " + std::to_string(s));
    VT_REQUIRE(q_len <= max_query_len, op,
               "sequence " + std::to_string(s) + " has more query tokens than max_query_len");
    if (seq_len == 0) continue;  // padding: its rows become zeros
    VT_REQUIRE(seq_len >= q_len, op, at("seq_lens", s) + " is shorter than its query");
    VT_REQUIRE(seq_len <= max_seq_len, op, at("seq_lens", s) + " exceeds max_seq_len");
    VT_REQUIRE(int64_t(seq_len) <= int64_t(p.max_blocks_per_seq) * p.block_size, op,
               at("seq_lens", s) + " needs more than max_blocks_per_seq blocks");
    if (q_len == 0) continue;
    const int32_t* table = p.block_tables + size_t(s) * p.max_blocks_per_seq;
    for (int32_t b = p.window_start(p.first_position(s)) / p.block_size; b <= (seq_len - 1) / p.block_size; b++)
      VT_REQUIRE(table[b] >= 0, op, "block table of sequence " + std::to_string(s) + " has a negative block id");
  }
  return VT_OK;
}

}  // namespace

extern "C" {

vt_status vt_paged_attention(vt_context* ctx, void* out, const void* q, const void* k_cache, const void* v_cache,
                             const int32_t* block_tables, const int32_t* seq_lens, const int32_t* query_start_loc,
                             int32_t num_seqs, int32_t num_tokens, int32_t max_query_len, int32_t max_seq_len,
                             int32_t max_blocks_per_seq, int32_t num_q_heads, int32_t num_kv_heads, int32_t head_dim,
                             int32_t q_row_stride, int32_t block_size, float scale, int32_t sliding_window,
                             float soft_cap, vt_dtype act_dtype, vt_dtype cache_dtype) {
  const char* op = "vt_paged_attention";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_act_dtype(op, act_dtype));
  VT_TRY(vt::check_storage_dtype(op, "cache_dtype", cache_dtype));
  VT_TRY(vt::check_paged_attention_sizes(op, num_seqs, num_tokens, max_blocks_per_seq));
  VT_TRY(vt::check_paged_attention_args(op, out, q, k_cache, v_cache, block_tables, seq_lens, query_start_loc,
                                        num_q_heads, num_kv_heads, head_dim, q_row_stride, block_size, soft_cap));
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_paged_attention, out, q, k_cache, v_cache, block_tables, seq_lens, query_start_loc,
                         num_seqs, num_tokens, max_query_len, max_seq_len, max_blocks_per_seq, num_q_heads,
                         num_kv_heads, head_dim, q_row_stride, block_size, scale, sliding_window, soft_cap, act_dtype,
                         cache_dtype);

  Problem p{static_cast<float*>(out),
            static_cast<const float*>(q),
            k_cache,
            v_cache,
            block_tables,
            seq_lens,
            query_start_loc,
            max_blocks_per_seq,
            num_q_heads,
            num_kv_heads,
            head_dim,
            q_row_stride,
            block_size,
            sliding_window,
            scale,
            soft_cap,
            cache_dtype,
            num_q_heads / num_kv_heads,
            round_up(head_dim)};
  VT_TRY(check_batch(op, p, num_seqs, num_tokens, max_query_len, max_seq_len));

  const int tile_tokens = std::max(1, kTileRows / p.group);
  std::vector<Task> tasks;
  for (int32_t seq = 0; seq < num_seqs; seq++) {
    if (p.seq_lens[seq] == 0) {
      const size_t row = size_t(num_q_heads) * head_dim;
      std::fill_n(p.out + size_t(query_start_loc[seq]) * row, size_t(p.query_len(seq)) * row, 0.0f);
      continue;
    }
    for (int32_t first = 0; first < p.query_len(seq); first += tile_tokens) {
      int32_t end = std::min(p.query_len(seq), first + tile_tokens);
      int32_t last_position = p.first_position(seq) + end - 1;
      int64_t keys = last_position + 1 - p.window_start(p.first_position(seq) + first);
      for (int32_t kv_head = 0; kv_head < num_kv_heads; kv_head++)
        tasks.push_back({seq, kv_head, first, end, int64_t(end - first) * p.group * keys});
    }
  }
  if (tasks.empty()) return vt::ok();
  std::stable_sort(tasks.begin(), tasks.end(), [](const Task& a, const Task& b) { return a.cost > b.cost; });

  const int threads = int(std::min<size_t>(ctx->num_threads, tasks.size()));
#pragma omp parallel num_threads(threads)
  {
    Scratch scratch(tile_tokens * p.group, p.padded_dim);
    auto run = [&](auto C, auto convert) {
#pragma omp for schedule(dynamic, 1)
      for (size_t i = 0; i < tasks.size(); i++)
        run_task<decltype(C)::value, decltype(convert)::value>(p, tasks[i], scratch);
    };
    // Rows of whole vectors are read in place; others go through padded f32 copies.
    if (p.head_dim == p.padded_dim)
      vt::with_dtype(cache_dtype, [&](auto C) { run(C, std::false_type{}); });
    else
      run(std::integral_constant<vt_dtype, VT_F32>{}, std::true_type{});
  }
  return vt::ok();
}

}  // extern "C"
