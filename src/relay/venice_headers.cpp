#include "lagoon/relay/venice_headers.hpp"

#include <algorithm>
#include <array>

#include "lagoon/http/ascii.hpp"

namespace lagoon::relay {
namespace {

constexpr std::array<std::string_view, 3> kForwarded{
    "x-venice-tee-client-pub-key",
    "x-venice-tee-model-pub-key",
    "x-venice-tee-signing-algo",
};

constexpr std::array<std::string_view, 8> kRelayed{
    "x-venice-model-id",
    "x-venice-model-name",
    "x-venice-model-deprecation-warning",
    "x-venice-model-deprecation-date",
    "x-venice-is-blurred",
    "x-venice-is-content-violation",
    "x-venice-version",
    "content-disposition",
};

}  // namespace

// Every header of every request and answer is asked about: most are rejected by their length or first
// letter before any comparison.
bool forwarded_request_header(std::string_view name) noexcept {
  if (name.size() < 25 || http::ascii_lower(name.front()) != 'x') return false;
  return std::any_of(kForwarded.begin(), kForwarded.end(),
                     [&](std::string_view n) { return http::iequals(name, n); });
}

bool relayed_response_header(std::string_view name) noexcept {
  if (name.size() < 16) return false;
  const char first = http::ascii_lower(name.front());
  if (first != 'x' && first != 'c') return false;
  return std::any_of(kRelayed.begin(), kRelayed.end(),
                     [&](std::string_view n) { return http::iequals(name, n); });
}

}  // namespace lagoon::relay
