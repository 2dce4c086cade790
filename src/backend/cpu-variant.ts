// The CPU library is built once per x86-64 level (the Makefile's CPU_VARIANTS, lowest first), and
// the best one this CPU can run is chosen at start-up, as llama.cpp chooses its CPU variants: one
// executable runs on any AVX2 machine and uses AVX-512 where there is.
import { readFileSync } from "node:fs";

export interface CpuVariant {
  /** The name VLLM_TS_CPU_VARIANT takes and start-up prints. */
  name: string;
  /** The g++ flags it is built with. */
  compilerFlags: string;
  /** The /proc/cpuinfo flags of the instructions those flags let the compiler use. */
  cpuFlags: readonly string[];
}

const CPUINFO = "/proc/cpuinfo";

/** The feature flags of the first processor in a /proc/cpuinfo text (all cores list the same). */
export function cpuFlagsOf(cpuinfo: string): Set<string> {
  const line = /^flags\s*:(.*)$/m.exec(cpuinfo);
  if (!line) throw new Error(`no "flags" line in ${CPUINFO}: cannot tell which CPU kernels this CPU runs`);
  return new Set(line[1]!.split(/\s+/).filter(Boolean));
}

/** This machine's CPU feature flags. */
export function hostCpuFlags(): Set<string> {
  try {
    return cpuFlagsOf(readFileSync(CPUINFO, "utf8"));
  } catch (error) {
    throw new Error(`cannot read ${CPUINFO} to choose the CPU kernels: ${(error as Error).message}`);
  }
}

function missingFlags(variant: CpuVariant, cpuFlags: ReadonlySet<string>): string[] {
  return variant.cpuFlags.filter((flag) => !cpuFlags.has(flag));
}

/**
 * The variant named by `forced` (VLLM_TS_CPU_VARIANT) if set, else the last of `variants` (lowest
 * first) whose flags are all in `cpuFlags`. Throws, naming the flags this CPU lacks, when the
 * forced variant or even the lowest needs more than it has: its library would die on an illegal
 * instruction.
 */
export function chooseCpuVariant<Variant extends CpuVariant>(
  variants: readonly Variant[],
  cpuFlags: ReadonlySet<string>,
  forced?: string,
): Variant {
  if (forced) {
    const variant = variants.find((candidate) => candidate.name === forced);
    if (!variant)
      throw new Error(
        `VLLM_TS_CPU_VARIANT=${forced}: no such CPU variant in this build (have: ${variants.map((v) => v.name).join(", ")})`,
      );
    const missing = missingFlags(variant, cpuFlags);
    if (missing.length > 0)
      throw new Error(
        `VLLM_TS_CPU_VARIANT=${forced}: this CPU lacks ${missing.join(", ")} (the variant is built with ${variant.compilerFlags})`,
      );
    return variant;
  }
  const best = variants.findLast((variant) => missingFlags(variant, cpuFlags).length === 0);
  if (best) return best;
  const lowest = variants[0]!;
  throw new Error(
    `this CPU lacks ${missingFlags(lowest, cpuFlags).join(", ")}, which the CPU kernels need at least ` +
      `(their lowest variant, ${lowest.name}, is built with ${lowest.compilerFlags})`,
  );
}
