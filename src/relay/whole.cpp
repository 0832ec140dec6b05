#include "lagoon/relay/whole.hpp"

#include "lagoon/log/log.hpp"

namespace lagoon::relay {

boost::asio::awaitable<std::optional<upstream::Failure>> read_whole(upstream::Exchange& ex, std::string& body) {
  for (;;) {
    auto piece = co_await ex.read_some();
    if (!piece) co_return piece.error();
    if (piece->empty()) co_return std::nullopt;
    if (body.size() + piece->size() > kMaxWholeBody)
      co_return upstream::Failure{upstream::Failure::Kind::broken, "the upstream response is larger than 64 MiB"};
    body.append(*piece);
  }
}

void log_alert(Alert alert, unsigned status, const std::string& request_id, std::string_view body,
               std::string_view credential, metrics::Registry& metrics) {
  const char* label = nullptr;
  switch (alert) {
    case Alert::none: return;
    case Alert::credential_refused:
      log::error("the upstream refused the gateway's credential", {{"upstream_status", status}});
      label = "credential_refused";
      break;
    case Alert::payment_required:
      log::error("the upstream refused for payment: the gateway's upstream account needs attention",
                 {{"upstream_status", status},
                  {"request_id", request_id},
                  {"upstream_body", log_excerpt(body, credential)}});
      label = "payment_required";
      break;
  }
  metrics
      .counter("lagoon_upstream_alerts_total",
               "Upstream refusals that are the operator's to fix: credential_refused (401/403 to the gateway's "
               "key), payment_required (402: the upstream account is out of funds)",
               {{"alert", label}})
      .inc();
}

}  // namespace lagoon::relay
