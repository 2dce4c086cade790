// The host's memory figures from /proc/meminfo: the CPU backend's device memory, and the
// emulated GPU's.
#pragma once

#include <cstddef>
#include <fstream>
#include <string>

namespace vt {

// The value of a "Key:  <number> kB" line of /proc/meminfo in bytes, or 0 when absent.
inline size_t meminfo_bytes(const std::string& key) {
  std::ifstream file("/proc/meminfo");
  std::string name, unit;
  size_t kilobytes = 0;
  while (file >> name >> kilobytes) {
    std::getline(file, unit);
    if (name == key + ":") return kilobytes * 1024;
  }
  return 0;
}

}  // namespace vt
