#include "lagoon/upstream/retry_after.hpp"

#include <charconv>
#include <cmath>
#include <system_error>

namespace lagoon::upstream {

namespace {

// Seconds as a finite, non-negative double, or nullopt.
std::optional<double> seconds_of(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.empty()) return std::nullopt;
  double s = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), s, std::chars_format::general);
  // Out of range ("1e400") leaves s untouched: refused like any other value that is not a plain number.
  if (ec != std::errc{} || end != v.data() + v.size() || !std::isfinite(s) || s < 0) return std::nullopt;
  return s;
}

}  // namespace

std::optional<std::chrono::milliseconds> retry_after_delay(std::string_view value, std::chrono::milliseconds cap) {
  const auto s = seconds_of(value);
  if (!s) return std::nullopt;
  // Compared as doubles first: only a value already known to fit is converted to an integer.
  const double ms = *s * 1000.0;
  if (ms >= static_cast<double>(cap.count())) return cap;
  return std::chrono::milliseconds(static_cast<long long>(ms));
}

std::optional<std::string> retry_after_for_client(const std::optional<std::string>& value, std::chrono::seconds cap) {
  if (!value) return std::nullopt;
  const auto s = seconds_of(*value);
  if (!s) return std::nullopt;
  const double whole = std::ceil(*s);
  if (whole >= static_cast<double>(cap.count())) return std::to_string(cap.count());
  return std::to_string(static_cast<long long>(whole));
}

}  // namespace lagoon::upstream
