// WallClock: the time of day that policies read — a key's expiry, a budget's period. The system clock,
// or (LAGOON_CLOCK_FILE, tests only) a file holding Unix seconds, so tests on real processes can put
// every instance at the exact second a key expires without waiting for it.
// Thread-safety: a WallClock may be called from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace lagoon::util {

using WallClock = std::function<std::chrono::system_clock::time_point()>;

// The system clock when `file` is empty; else the file's time, read on every call (the system clock
// while the file is missing or unreadable, so a test that has not written it yet sees real time).
WallClock make_wall_clock(const std::string& file);

inline std::int64_t unix_us(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

}  // namespace lagoon::util
