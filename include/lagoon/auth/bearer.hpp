// The credential of an `Authorization: Bearer <token>` header (RFC 6750 §2.1; the scheme name is
// case-insensitive, RFC 9110 §11.1). Pure; thread-safe.
#pragma once

#include <optional>
#include <string_view>

namespace lagoon::auth {

// The token, or nullopt when the header is empty, uses another scheme or carries no token.
inline std::optional<std::string_view> bearer_token(std::string_view header) noexcept {
  constexpr std::string_view kScheme = "bearer";
  if (header.size() <= kScheme.size()) return std::nullopt;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    char c = header[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kScheme[i]) return std::nullopt;
  }
  std::string_view rest = header.substr(kScheme.size());
  if (rest.front() != ' ' && rest.front() != '\t') return std::nullopt;
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) rest.remove_suffix(1);
  if (rest.empty()) return std::nullopt;
  // By hand: find_first_of(" \t") calls memchr once per character.
  for (const char c : rest)
    if (c == ' ' || c == '\t') return std::nullopt;
  return rest;
}

}  // namespace lagoon::auth
