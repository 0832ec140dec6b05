// Request ids: the client's X-Request-Id when it is sane, else a fresh random UUID (v4).
// Pure apart from the CSPRNG; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace lagoon::http {

inline constexpr std::size_t kMaxRequestIdLength = 128;

// 1..128 characters of [A-Za-z0-9._:-]: safe to echo in a header and to write in a log line.
bool sane_request_id(std::string_view id) noexcept;

std::string new_request_id();

// The id to use for a request that carried `client_id` (empty when absent).
std::string choose_request_id(std::string_view client_id);

}  // namespace lagoon::http
