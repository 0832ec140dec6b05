// An upstream's Retry-After header (RFC 9110 §10.2.3: delay-seconds or an HTTP-date) as the gateway may
// use it. The value is upstream-controlled: anything that is not a finite, non-negative number of seconds
// ("1e400", "nan", "-5", "inf", an HTTP-date, garbage) is treated as absent, never converted blindly.
// Pure; thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace lagoon::upstream {

// The delay the value asks for, at most `cap`; nullopt when it is unusable (see above). Decimal seconds
// ("0.5") are accepted, as some upstreams send them; surrounding blanks are ignored.
std::optional<std::chrono::milliseconds> retry_after_delay(std::string_view value, std::chrono::milliseconds cap);

// The value to pass on to a client: whole seconds, rounded up, at most `cap`; nullopt when unusable (the
// caller then sends its own default).
std::optional<std::string> retry_after_for_client(const std::optional<std::string>& value, std::chrono::seconds cap);

}  // namespace lagoon::upstream
