// Peak DRAM bandwidth of the GPUs the project is measured on, from the vendors' data sheets, by
// the name the CUDA driver reports (cudaDeviceProp::name, e.g. "NVIDIA H100 80GB HBM3"). A
// memory-bound kernel's figure is then also a fraction of what the part can do at best, beside
// the fraction of the copy bandwidth measured in the same run. A device not in the table has no
// peak (the figures that need it are left out) rather than a guessed one.

export interface DevicePeak {
  /** The table entry that matched. */
  entry: string;
  /** Peak memory bandwidth in GB/s (1e9 bytes per second). */
  bandwidthGBs: number;
}

interface PeakEntry {
  entry: string;
  bandwidthGBs: number;
  /** Every one of these words appears in the device name (case-insensitive). */
  words: string[];
}

// First match wins, so each variant comes before the entry its words would also match (the
// PCIe and NVL H100s before the SXM one, the A100 80GB PCIe before the SXM4-80GB).
const PEAKS: readonly PeakEntry[] = [
  { entry: "H100 PCIe", bandwidthGBs: 2000, words: ["H100", "PCIE"] },
  { entry: "H100 NVL", bandwidthGBs: 3900, words: ["H100", "NVL"] },
  { entry: "H100 SXM", bandwidthGBs: 3350, words: ["H100", "SXM5"] },
  { entry: "H100 SXM", bandwidthGBs: 3350, words: ["H100", "80GB", "HBM3"] },
  { entry: "H200", bandwidthGBs: 4800, words: ["H200"] },
  { entry: "A100 80GB PCIe", bandwidthGBs: 1935, words: ["A100", "80GB", "PCIE"] },
  { entry: "A100 80GB SXM", bandwidthGBs: 2039, words: ["A100", "80GB"] },
  { entry: "A100 40GB", bandwidthGBs: 1555, words: ["A100", "40GB"] },
  { entry: "L4", bandwidthGBs: 300, words: ["L4"] },
];

/** The name's words: "NVIDIA A100-SXM4-80GB" -> NVIDIA, A100, SXM4, 80GB (so GH200 is not H200). */
function wordsOf(deviceName: string): Set<string> {
  return new Set(
    deviceName
      .toUpperCase()
      .split(/[^A-Z0-9]+/)
      .filter((word) => word.length > 0),
  );
}

/** The device's peak memory bandwidth, or null when the name is not in the table. */
export function peakBandwidth(deviceName: string): DevicePeak | null {
  const words = wordsOf(deviceName);
  const found = PEAKS.find((peak) => peak.words.every((word) => words.has(word)));
  return found ? { entry: found.entry, bandwidthGBs: found.bandwidthGBs } : null;
}
