// Llama 3.1's RoPE scaling as a GGUF file carries it: not as rope.scaling.* keys but as a
// rope_freqs tensor of per-frequency divisors, which llama.cpp's converter computes from the
// checkpoint's rope_scaling (factor, low and high frequency factors, original context). The engine
// computes that scaling itself from the four numbers, so they are recovered here: the divisors
// say the factor outright (their largest), and the other three are the ones, among the values
// Llama 3.x checkpoints use, whose divisors match the tensor's.
import type { Llama3RopeScaling } from "../config.ts";

/** The frequency-factor pairs and original contexts of Meta's Llama 3.1, 3.2 and 3.3 checkpoints, and nearby ones. */
const FREQUENCY_FACTORS: readonly [number, number][] = [
  [1, 4],
  [1, 8],
  [2, 8],
];
const ORIGINAL_CONTEXTS = [8192, 4096, 16384, 32768, 2048];

/** How closely a candidate's divisors must match the stored f32 ones. */
const TOLERANCE = 1e-4;

/**
 * What each frequency is divided by under `scaling`: the factor below the low-frequency wavelength,
 * 1 above the high-frequency one, and between them the blend Llama 3.1's rope_scaling defines.
 */
function divisors(headDim: number, theta: number, scaling: Llama3RopeScaling): number[] {
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: original } = scaling;
  return Array.from({ length: headDim / 2 }, (_, i) => {
    const wavelength = 2 * Math.PI * theta ** ((2 * i) / headDim);
    if (wavelength < original / highFreqFactor) return 1;
    if (wavelength > original / lowFreqFactor) return factor;
    const smooth = (original / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
    return 1 / ((1 - smooth) / factor + smooth);
  });
}

/** The llama3 scaling whose divisors are `stored`, or null when none of the known ones is. */
export function llama3ScalingOf(stored: Float32Array, headDim: number, theta: number): Llama3RopeScaling | null {
  if (stored.length !== headDim / 2) return null;
  const factor = Math.max(...stored);
  for (const originalMaxPositionEmbeddings of ORIGINAL_CONTEXTS) {
    for (const [lowFreqFactor, highFreqFactor] of FREQUENCY_FACTORS) {
      const scaling: Llama3RopeScaling = {
        type: "llama3",
        factor,
        lowFreqFactor,
        highFreqFactor,
        originalMaxPositionEmbeddings,
      };
      const expected = divisors(headDim, theta, scaling);
      if (expected.every((d, i) => Math.abs(d - stored[i]!) <= TOLERANCE * d)) return scaling;
    }
  }
  return null;
}
