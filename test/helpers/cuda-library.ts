// The CUDA library that the engine-level CUDA tests open beside the CPU one: the kernels built
// against the CPU emulation (what `make test` runs), or the file VLLM_TS_CUDA_LIBRARY names (the
// real library on a GPU machine: bench/gpu/check.sh).
import { resolve } from "node:path";

export const cudaLibraryUnderTest =
  process.env.VLLM_TS_CUDA_LIBRARY || resolve(import.meta.dir, "../../build/libvllm_ts_cuda_emu.so");
