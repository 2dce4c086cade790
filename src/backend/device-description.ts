// How progress lines name the device a backend runs on, with the CPU library's variant where it
// has one, since the same build runs slower on a CPU that gets a lower one: "cpu (AMD EPYC; CPU
// kernels: avx512-vnni-bf16)", "cuda (NVIDIA H200)".
export function describeDevice(backend: string, deviceName: string, cpuKernels: string | null): string {
  return `${backend} (${deviceName}${cpuKernels ? `; CPU kernels: ${cpuKernels}` : ""})`;
}
