// ASCII case-insensitive comparison for protocol tokens (header names, media types, parameter names):
// the second argument is the lower-case form to match; and trimming of optional whitespace.
// Locale-free. Pure; thread-safe.
#pragma once

#include <string_view>

namespace lagoon::http {

constexpr char ascii_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c | 0x20) : c; }

// Whether `s` begins with `lower_prefix`, ignoring the case of `s`'s ASCII letters.
constexpr bool istarts_with(std::string_view s, std::string_view lower_prefix) noexcept {
  if (s.size() < lower_prefix.size()) return false;
  for (std::size_t i = 0; i < lower_prefix.size(); ++i)
    if (ascii_lower(s[i]) != lower_prefix[i]) return false;
  return true;
}

constexpr bool iequals(std::string_view s, std::string_view lower) noexcept {
  return s.size() == lower.size() && istarts_with(s, lower);
}

// Whether two names are the same ignoring ASCII case, neither of them known to be lower case (two
// header names as clients or routes wrote them).
constexpr bool same_name(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

// `s` without the optional whitespace (spaces, tabs) around it, as around header field values and their
// parameters (RFC 9110 §5.6.3).
constexpr std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace lagoon::http
