#include "lagoon/util/wall_clock.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>

namespace lagoon::util {

WallClock make_wall_clock(const std::string& file) {
  if (file.empty()) return [] { return std::chrono::system_clock::now(); };
  return [file] {
    // stdio on a small file: the test hook costs a few microseconds a reading, and only where set.
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(file.c_str(), "r"), &std::fclose);
    char buf[64] = {};
    if (!f || !std::fgets(buf, sizeof buf, f.get())) return std::chrono::system_clock::now();
    char* end = nullptr;
    const double seconds = std::strtod(buf, &end);
    if (end == buf || !std::isfinite(seconds)) return std::chrono::system_clock::now();
    return std::chrono::system_clock::time_point(
        std::chrono::microseconds(static_cast<std::int64_t>(std::llround(seconds * 1e6))));
  };
}

}  // namespace lagoon::util
