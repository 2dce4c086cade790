// The CPU library's variants (the Makefile's CPU_VARIANTS, embedded in every build) and the choice
// among them at start-up: the best one whose instructions the CPU has, VLLM_TS_CPU_VARIANT to force
// one, and a CPU below the lowest refused with the instructions it lacks instead of a crash.
import { describe, expect, test } from "bun:test";
import { cpuVariants } from "#embedded-libraries";
import { Backend } from "../../src/backend/backend.ts";
import { chooseCpuVariant, cpuFlagsOf, hostCpuFlags } from "../../src/backend/cpu-variant.ts";

// /proc/cpuinfo's flags of real CPUs, shortened to what tells them apart.
const X86_64_V2 = "fpu cx8 cmov mmx fxsr sse sse2 syscall nx lm pni ssse3 cx16 sse4_1 sse4_2 popcnt lahf_lm";
const SANDY_BRIDGE = `${X86_64_V2} pclmulqdq aes xsave avx`;
const HASWELL = `${SANDY_BRIDGE} fma movbe f16c abm bmi1 avx2 bmi2 erms invpcid`;
const SKYLAKE_SP = `${HASWELL} avx512f avx512dq avx512cd avx512bw avx512vl`;
const ZEN_4 = `${SKYLAKE_SP} avx512ifma avx512vbmi avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq avx512_bf16`;

const chosen = (flags: string, forced?: string) =>
  chooseCpuVariant(cpuVariants, new Set(flags.split(" ")), forced).name;

describe("the variants", () => {
  test("are x86-64-v3, x86-64-v4 and avx512-vnni-bf16, lowest first, each asking for all the flags of the one below", () => {
    expect(cpuVariants.map((variant) => variant.name)).toEqual(["x86-64-v3", "x86-64-v4", "avx512-vnni-bf16"]);
    for (let i = 1; i < cpuVariants.length; i++)
      expect(cpuVariants[i]!.cpuFlags).toEqual(expect.arrayContaining([...cpuVariants[i - 1]!.cpuFlags]));
  });

  // The compiler's macro for each instruction set a -march or -m flag can turn on, and its name in
  // /proc/cpuinfo. LZCNT and XSAVE are left out: the compiler only emits them where AVX2 CPUs have
  // them, and some hypervisors do not list LZCNT ("abm").
  const instructionSets: Record<string, string> = {
    __AVX__: "avx",
    __AVX2__: "avx2",
    __BMI__: "bmi1",
    __BMI2__: "bmi2",
    __F16C__: "f16c",
    __FMA__: "fma",
    __MOVBE__: "movbe",
    __AVXVNNI__: "avx_vnni",
    __AVX512F__: "avx512f",
    __AVX512BW__: "avx512bw",
    __AVX512CD__: "avx512cd",
    __AVX512DQ__: "avx512dq",
    __AVX512VL__: "avx512vl",
    __AVX512VNNI__: "avx512_vnni",
    __AVX512BF16__: "avx512_bf16",
    __AVX512FP16__: "avx512_fp16",
    __AVX512IFMA__: "avx512ifma",
    __AVX512VBMI__: "avx512vbmi",
    __AVX512VBMI2__: "avx512_vbmi2",
    __AVX512BITALG__: "avx512_bitalg",
    __AVX512VPOPCNTDQ__: "avx512_vpopcntdq",
    __GFNI__: "gfni",
    __VAES__: "vaes",
    __VPCLMULQDQ__: "vpclmulqdq",
  };

  for (const variant of cpuVariants)
    test(`${variant.name} asks for exactly the instruction sets its compiler flags turn on`, () => {
      const compiler = process.env.CXX || "g++";
      const result = Bun.spawnSync([
        compiler,
        ...variant.compilerFlags.split(" "),
        "-dM",
        "-E",
        "-x",
        "c++",
        "/dev/null",
      ]);
      expect(result.exitCode).toBe(0);
      const defined = new Set([...result.stdout.toString().matchAll(/^#define (\w+) /gm)].map((match) => match[1]!));
      const turnedOn = Object.entries(instructionSets)
        .filter(([macro]) => defined.has(macro))
        .map(([, flag]) => flag);
      expect(turnedOn.sort()).toEqual([...variant.cpuFlags].sort());
    });
});

describe("the choice", () => {
  test("is the best variant whose flags the CPU has", () => {
    expect(chosen(HASWELL)).toBe("x86-64-v3");
    expect(chosen(SKYLAKE_SP)).toBe("x86-64-v4");
    expect(chosen(ZEN_4)).toBe("avx512-vnni-bf16");
  });

  test("refuses a CPU without AVX2, naming the instructions it lacks", () => {
    expect(() => chosen(SANDY_BRIDGE)).toThrow(
      "this CPU lacks avx2, bmi1, bmi2, f16c, fma, movbe, which the CPU kernels need at least " +
        "(their lowest variant, x86-64-v3, is built with -march=x86-64-v3)",
    );
  });

  test("VLLM_TS_CPU_VARIANT forces a variant the CPU can run", () => {
    expect(chosen(ZEN_4, "x86-64-v3")).toBe("x86-64-v3");
    expect(chosen(ZEN_4, "x86-64-v4")).toBe("x86-64-v4");
  });

  test("VLLM_TS_CPU_VARIANT naming no variant is refused with the names there are", () => {
    expect(() => chosen(ZEN_4, "avx512")).toThrow(
      "VLLM_TS_CPU_VARIANT=avx512: no such CPU variant in this build (have: x86-64-v3, x86-64-v4, avx512-vnni-bf16)",
    );
  });

  test("VLLM_TS_CPU_VARIANT naming a variant beyond the CPU is refused with what it lacks", () => {
    expect(() => chosen(SKYLAKE_SP, "avx512-vnni-bf16")).toThrow(
      "VLLM_TS_CPU_VARIANT=avx512-vnni-bf16: this CPU lacks avx512_vnni, avx512_bf16 " +
        "(the variant is built with -march=x86-64-v4 -mavx512vnni -mavx512bf16)",
    );
  });
});

describe("/proc/cpuinfo", () => {
  test("gives the first processor's flags, not its VMX flags", () => {
    const cpuinfo =
      "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu avx2 fma\nvmx flags\t: vnmi ept\n\n" +
      "processor\t: 1\nflags\t\t: fpu avx2 fma\n";
    expect([...cpuFlagsOf(cpuinfo)]).toEqual(["fpu", "avx2", "fma"]);
  });

  test("without a flags line is an error, not an empty set", () => {
    expect(() => cpuFlagsOf("processor\t: 0\n")).toThrow('no "flags" line in /proc/cpuinfo');
  });
});

/** Runs `body` with these environment variables set (undefined: unset), then restores them. */
async function withEnvironment(variables: Record<string, string | undefined>, body: () => Promise<void>) {
  const saved = Object.fromEntries(Object.keys(variables).map((name) => [name, process.env[name]]));
  const assign = (values: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(values))
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
  };
  assign(variables);
  try {
    await body();
  } finally {
    assign(saved);
  }
}

describe("Backend.open on the CPU", () => {
  test("runs the variant chosen for this machine and names it", () =>
    withEnvironment({ VLLM_TS_CPU_VARIANT: undefined, VLLM_TS_LIBRARY: undefined }, async () => {
      const backend = await Backend.open({ device: "cpu" });
      expect(backend.cpuKernels).toBe(chooseCpuVariant(cpuVariants, hostCpuFlags()).name);
      expect(backend.description).toEndWith(`; CPU kernels: ${backend.cpuKernels})`);
      backend.close();
    }));

  test("runs the variant VLLM_TS_CPU_VARIANT forces", () =>
    withEnvironment({ VLLM_TS_CPU_VARIANT: "x86-64-v3", VLLM_TS_LIBRARY: undefined }, async () => {
      const backend = await Backend.open({ device: "cpu" });
      expect(backend.cpuKernels).toBe("x86-64-v3");
      backend.close();
    }));

  test("fails with VLLM_TS_CPU_VARIANT's error when it names no variant", () =>
    withEnvironment({ VLLM_TS_CPU_VARIANT: "avx512", VLLM_TS_LIBRARY: undefined }, async () => {
      await expect(Backend.open({ device: "cpu" })).rejects.toThrow(
        'could not open a native backend for device "cpu":\n  cpu: VLLM_TS_CPU_VARIANT=avx512: no such CPU variant',
      );
    }));

  test("opens VLLM_TS_LIBRARY's file whatever VLLM_TS_CPU_VARIANT says, naming no variant", () =>
    withEnvironment({ VLLM_TS_CPU_VARIANT: "avx512", VLLM_TS_LIBRARY: cpuVariants[0]!.library }, async () => {
      const backend = await Backend.open({ device: "cpu" });
      expect(backend.cpuKernels).toBeNull();
      backend.close();
    }));
});
