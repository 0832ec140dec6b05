// Helpers the relaying routes share: reading a whole upstream answer within a bound, and telling the
// operator (in the log) about an upstream refusal that is the gateway's own problem.
// Thread-safety: read_whole() in one request's coroutine; log_alert() from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "lagoon/metrics/registry.hpp"
#include "lagoon/relay/decisions.hpp"
#include "lagoon/upstream/exchange.hpp"

namespace lagoon::relay {

// A non-stream answer or an upstream error body is read whole; beyond this it is not an answer.
inline constexpr std::size_t kMaxWholeBody = 64u << 20;

// Appends the rest of the exchange's body to `body`; the failure if it broke off (or grew past
// kMaxWholeBody: broken).
boost::asio::awaitable<std::optional<upstream::Failure>> read_whole(upstream::Exchange& ex, std::string& body);

// Logs what `alert` asks the operator to look at, and counts it in lagoon_upstream_alerts_total{alert}
// (an operator's alerting rule watches that); nothing for Alert::none. `body` is the upstream's error body
// (logged bounded and without the gateway's credential).
void log_alert(Alert alert, unsigned status, const std::string& request_id, std::string_view body,
               std::string_view credential, metrics::Registry& metrics);

}  // namespace lagoon::relay
