// The relay's decisions, apart from any I/O: what a client is told for each thing the upstream can
// do (an error status, a failure before or during the answer), when a request is worth a second
// attempt and how long to wait before it. Each returns a Verdict — the request's Outcome and the Reply —
// so the relay only carries them out, and each is unit-tested from tables.
// Pure; thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "lagoon/accounting/outcome.hpp"
#include "lagoon/chat/request.hpp"
#include "lagoon/http/reply.hpp"
#include "lagoon/ratelimit/policy.hpp"
#include "lagoon/upstream/exchange.hpp"

namespace lagoon::relay {

// What the operator must hear about, beside the client's answer (the caller logs it).
enum class Alert {
  none,
  credential_refused,  // the upstream answered 401/403 to the gateway's own credential
  payment_required,    // the upstream account is out of funds (402)
};

struct Verdict {
  accounting::Outcome outcome = accounting::Outcome::ok;
  http::Reply reply;
  Alert alert = Alert::none;
};

// The most an upstream's Retry-After may ask of a client: beyond it is not a rate limit but an outage.
inline constexpr std::chrono::seconds kMaxPassedRetryAfter{3600};
inline constexpr std::chrono::milliseconds kRetryDelay{200};
// The longest the gateway itself waits, on the upstream's Retry-After, before its one retry.
inline constexpr std::chrono::milliseconds kMaxRetryAfter{2000};

// A body the route cannot relay: 400 naming the field, before anything goes upstream.
Verdict invalid_request(const chat::InvalidRequest& bad);

// A request the key's limits or budgets refused (Decision::refused()): 429 for a rate limit, 402 for a
// budget with too little left (naming the key's or the user's budget and when it resets) or a model
// without a price (`model`) under a budget, 503 when a budget could not be checked. Retry-After on 429/503.
Verdict admission_refusal(const ratelimit::Decision& d, std::string_view model);

// The key's policy refused the request: 403 permission_error for a route group (`group`) or a model it
// does not list (`model`, nullopt when the request named none), 429 concurrency_limit with Retry-After
// when the key already has `max` requests open.
Verdict endpoint_refusal(std::string_view group);
Verdict model_refusal(const std::optional<std::string>& model);
Verdict concurrency_refusal(std::int64_t max);

// The longest upstream error message passed on to a client.
inline constexpr std::size_t kMaxPassedMessage = 1000;

// The upstream answered a non-2xx status (its whole body read) before anything reached the client.
// 401/403 never pass on (502: it is the gateway's credential, not the client's key); 402 is the
// operator's business (503); 429 and 503 (Venice's model offline or at capacity) pass on with a
// sanitized Retry-After; other 5xx become 502; other 4xx pass on when OpenAI-shaped, are rewrapped in
// OpenAI's shape when Venice's ({"error": "message"}), else a 400-class error of our own — always with
// the upstream's status.
Verdict upstream_status(unsigned status, std::string_view body, const std::optional<std::string>& retry_after);

// send() failed: nothing came back.
Verdict failed_before_head(upstream::Failure::Kind kind);

// Reading a whole answer failed after its head; `cut`: the drain deadline ended it.
Verdict failed_in_body(upstream::Failure::Kind kind, bool cut);

// The event that ends a stream which broke off after its head was sent.
std::string_view stream_failure_message(upstream::Failure::Kind kind, bool cut) noexcept;
std::string error_event(std::string_view message);

// Statuses the upstream may answer differently a moment later.
bool retryable_status(unsigned status) noexcept;
// Whether attempt `attempt` (1-based) may be followed by another, before any byte reached the client:
// at most two attempts; after a connect failure (nothing was sent) or a retryable status. The retry
// budget is asked separately, and only when this says yes.
bool worth_retrying(int attempt, std::optional<unsigned> status, std::optional<upstream::Failure::Kind> failure) noexcept;
// How long to wait before the retry: the upstream's Retry-After when usable (at most kMaxRetryAfter),
// else kRetryDelay scaled by `base` (tests pass 0).
std::chrono::milliseconds retry_delay(const std::optional<std::string>& retry_after,
                                      std::chrono::milliseconds base = kRetryDelay);

// An upstream error body as it may be logged: bounded, and without the gateway's own credential should
// an upstream ever quote it back.
std::string log_excerpt(std::string_view body, std::string_view credential);

}  // namespace lagoon::relay
