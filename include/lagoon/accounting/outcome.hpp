// Outcome: how a request ended, as one closed set. The usage row's `outcome` column and the
// `outcome` label of lagoon_http_requests_total both come from label() here, so a new outcome is added
// in one place and a metric label can never be an unbounded string.
// Pure; thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

namespace lagoon::accounting {

enum class Outcome : std::uint8_t {
  ok,
  invalid_request,       // 400: the body is not a request the gateway can forward
  rate_limited,          // 429 from the key's own limits
  session_unavailable,   // 503: no session could be found or made
  upstream_error,        // the upstream answered with an error, or its stream broke off
  upstream_timeout,      // the upstream did not answer, or stalled, in time
  upstream_unavailable,  // the upstream could not be reached, or its answer broke off
  client_disconnected,   // the client went away before the answer was complete
  shutdown,              // cut by the drain deadline
  aborted,               // the process stopped while the request was open
  interrupted,           // found open in the in-flight table after a crash
  budget_exceeded,       // 402: a budget has less left than the request may cost, or no price applies
  budget_unavailable,    // 503: a budget applies and could not be checked
  forbidden,             // 403: the key's policy does not allow the model or the endpoint
  concurrency_limited,   // 429: the key already has max_concurrent requests open
  // Requests without a usage row of their own (refused before a key was known, or not metered):
  unauthorized,
  unavailable,
  client_error,
  server_error,
};

std::string_view label(Outcome o) noexcept;

// The outcome of a request that has none of its own, from its status alone.
Outcome outcome_of_status(unsigned status) noexcept;

}  // namespace lagoon::accounting
