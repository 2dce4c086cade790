// What Phi-3 adds to a Llama-family config: RoPE on part of each head (partial_rotary_factor).
// Its fused qkv_proj and gate_up_proj tensors are a matter of names (weight-names.ts); its
// long-context RoPE ("longrope", formerly "su") is refused by the common rope_scaling parser, so
// the 4k-context checkpoints load and the 128k ones do not.
import type { ModelConfig } from "./config.ts";
import { fieldReader, type Json } from "./config-fields.ts";
import { ModelLoadError } from "./errors.ts";

export function phi3Fields(fields: Json, file: string, config: ModelConfig): Pick<ModelConfig, "rotaryDim"> {
  const factor = fieldReader(fields, file).positiveNumber("partial_rotary_factor", 1);
  const rotaryDim = config.headDim * factor;
  if (factor > 1 || !Number.isInteger(rotaryDim) || rotaryDim % 2 !== 0) {
    throw new ModelLoadError(
      file,
      `"partial_rotary_factor" ${factor} must give an even number of rotated dims of "head_dim" ${config.headDim}`,
    );
  }
  return { rotaryDim };
}
