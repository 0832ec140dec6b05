#include "lagoon/accounting/outcome.hpp"

namespace lagoon::accounting {

std::string_view label(Outcome o) noexcept {
  switch (o) {
    case Outcome::ok: return "ok";
    case Outcome::invalid_request: return "invalid_request";
    case Outcome::rate_limited: return "rate_limited";
    case Outcome::session_unavailable: return "session_unavailable";
    case Outcome::upstream_error: return "upstream_error";
    case Outcome::upstream_timeout: return "upstream_timeout";
    case Outcome::upstream_unavailable: return "upstream_unavailable";
    case Outcome::client_disconnected: return "client_disconnected";
    case Outcome::shutdown: return "shutdown";
    case Outcome::aborted: return "aborted";
    case Outcome::interrupted: return "interrupted";
    case Outcome::budget_exceeded: return "budget_exceeded";
    case Outcome::budget_unavailable: return "budget_unavailable";
    case Outcome::forbidden: return "forbidden";
    case Outcome::concurrency_limited: return "concurrency_limited";
    case Outcome::unauthorized: return "unauthorized";
    case Outcome::unavailable: return "unavailable";
    case Outcome::client_error: return "client_error";
    case Outcome::server_error: return "server_error";
  }
  return "server_error";
}

Outcome outcome_of_status(unsigned status) noexcept {
  if (status < 400) return Outcome::ok;
  if (status == 401) return Outcome::unauthorized;
  if (status == 429) return Outcome::rate_limited;
  if (status == 503) return Outcome::unavailable;
  return status < 500 ? Outcome::client_error : Outcome::server_error;
}

}  // namespace lagoon::accounting
