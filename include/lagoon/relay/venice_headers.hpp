// Which headers cross the gateway, by allow-list: from the client to Venice only what an endpoint cannot
// work without (the end-to-end-encryption keys of TEE models); from Venice to the client only what
// describes the answer (the model that served it, deprecation notices, content flags, Venice's version,
// Content-Disposition). Never the operator's account state — x-venice-balance-*, X-Balance-Remaining,
// Venice's own x-ratelimit-* — which an allow-list cannot let through by accident.
// Pure; thread-safe.
#pragma once

#include <string_view>

namespace lagoon::relay {

// A client request header Lagoon passes upstream (names compare case-insensitively).
bool forwarded_request_header(std::string_view name) noexcept;

// An upstream response header Lagoon passes to the client (Content-Type is handled on its own).
bool relayed_response_header(std::string_view name) noexcept;

}  // namespace lagoon::relay
