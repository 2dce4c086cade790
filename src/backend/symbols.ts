// The bun:ffi symbol table of cuda/include/vllm_ts.h: one table for both native libraries
// (CPU and CUDA export exactly these symbols). Keep it in the header's order.
import { FFIType } from "bun:ffi";

const { ptr, i32, u32, f32, u64, cstring } = FFIType;
const status = i32;

export const vtSymbols = {
  vt_last_error: { args: [], returns: cstring },
  vt_abi_version: { args: [], returns: i32 },
  vt_backend_name: { args: [], returns: cstring },
  vt_device_count: { args: [ptr], returns: status },
  vt_context_create: { args: [i32, i32, ptr], returns: status },
  vt_context_destroy: { args: [ptr], returns: status },
  vt_synchronize: { args: [ptr], returns: status },
  vt_memory_info: { args: [ptr, ptr, ptr], returns: status },
  vt_device_name: { args: [ptr, ptr, u64], returns: status },
  vt_malloc: { args: [ptr, u64, ptr], returns: status },
  vt_free: { args: [ptr, ptr], returns: status },
  vt_malloc_host: { args: [ptr, u64, ptr], returns: status },
  vt_free_host: { args: [ptr, ptr], returns: status },
  vt_memcpy: { args: [ptr, ptr, ptr, u64, i32], returns: status },
  vt_memset: { args: [ptr, ptr, i32, u64], returns: status },
  vt_convert: { args: [ptr, ptr, i32, ptr, i32, u64], returns: status },
  vt_fill_uniform: { args: [ptr, ptr, i32, u64, u32, f32], returns: status },

  vt_embedding: { args: [ptr, ptr, i32, ptr, i32, i32, ptr, i32, i32], returns: status },
  vt_rms_norm: { args: [ptr, ptr, ptr, ptr, ptr, i32, i32, f32, i32, i32], returns: status },
  vt_head_rms_norm: { args: [ptr, ptr, ptr, i32, i32, i32, i32, f32, i32, i32], returns: status },
  vt_rope_cos_sin_cache: {
    args: [ptr, ptr, i32, i32, f32, i32, f32, f32, f32, i32],
    returns: status,
  },
  vt_rotary_embedding: {
    args: [ptr, ptr, ptr, ptr, ptr, i32, i32, i32, i32, i32, i32, i32],
    returns: status,
  },
  vt_silu_and_mul: { args: [ptr, ptr, ptr, i32, i32, i32], returns: status },
  vt_matmul: { args: [ptr, ptr, ptr, ptr, ptr, i32, i32, i32, i32, i32], returns: status },
  vt_gather_rows: { args: [ptr, ptr, ptr, ptr, i32, u64], returns: status },

  vt_write_kv_cache: {
    args: [ptr, ptr, ptr, ptr, ptr, ptr, i32, i32, i32, i32, i32, i32, i32],
    returns: status,
  },
  vt_paged_attention: {
    args: [
      ptr, ptr, ptr, ptr, ptr, ptr, ptr, ptr,
      i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, f32, i32, i32, i32,
    ],
    returns: status,
  },
  vt_copy_blocks: { args: [ptr, ptr, i32, u64, u64, ptr, i32], returns: status },
  vt_swap_blocks: { args: [ptr, ptr, u64, ptr, u64, i32, u64, ptr, i32, i32], returns: status },

  vt_argmax: { args: [ptr, ptr, ptr, i32, i32, i32], returns: status },
  vt_log_softmax: { args: [ptr, ptr, ptr, ptr, i32, i32, i32], returns: status },
  vt_sample: { args: [ptr, ptr, i32, i32, i32, ptr, ptr, ptr, ptr, ptr, ptr], returns: status },

  vt_graph_begin_capture: { args: [ptr], returns: status },
  vt_graph_end_capture: { args: [ptr, ptr], returns: status },
  vt_graph_launch: { args: [ptr, ptr], returns: status },
  vt_graph_destroy: { args: [ptr, ptr], returns: status },
} as const;
