// Token embedding lookup: a gather of table rows, converted from the weight dtype to f32 and
// scaled (Gemma multiplies its embeddings by sqrt(hidden_size)).
#include "checks.h"
#include "common.h"
#include "op.h"

extern "C" {

// Memory-bound; a thread owns whole output rows (tokens).
vt_status vt_embedding(vt_context* ctx, const int32_t* token_ids, int32_t num_tokens, const void* table,
                       int32_t vocab_size, int32_t hidden_size, float scale, void* out, vt_dtype weight_dtype,
                       vt_dtype act_dtype) {
  const char* op = "vt_embedding";
  VT_REQUIRE(ctx, op, "ctx is NULL");
  VT_TRY(vt::check_act_dtype(op, act_dtype));
  VT_TRY(vt::check_storage_dtype(op, "weight_dtype", weight_dtype));
  VT_TRY(vt::check_embedding_args(op, token_ids, table, out, num_tokens, vocab_size, hidden_size));
  VT_RECORD_QUEUE_OR_RUN(ctx, vt_embedding, token_ids, num_tokens, table, vocab_size, hidden_size, scale, out,
                         weight_dtype, act_dtype);
  auto* y = static_cast<float*>(out);
  vt::with_dtype(weight_dtype, [&](auto W) {
#pragma omp parallel for num_threads(vt::threads_for(ctx, size_t(num_tokens) * hidden_size)) schedule(static)
    for (int32_t t = 0; t < num_tokens; t++) {
      float* row = y + size_t(t) * hidden_size;
      int32_t id = token_ids[t];
      if (id < 0 || id >= vocab_size) {
        for (int32_t d = 0; d < hidden_size; d++) row[d] = 0.0f;
        continue;
      }
      size_t base = size_t(id) * hidden_size;
      for (int32_t d = 0; d < hidden_size; d++) row[d] = vt::load(table, W, base + d) * scale;
    }
  });
  return vt::ok();
}

}  // extern "C"
