// The dtype a backend computes activations in for a model stored in `weightDtype`.
import type { Backend } from "./backend.ts";
import type { DType } from "./dtype.ts";

/** The CPU backend computes in f32 whatever the weights; the CUDA backend in the weights' dtype. */
export function activationDtype(backend: Backend, weightDtype: DType): DType {
  return backend.name === "cpu" ? "f32" : weightDtype;
}
