#include "request_log.hpp"

#include <nlohmann/json.hpp>

#include "lagoon/keys/api_key.hpp"
#include "lagoon/log/log.hpp"

namespace lagoon::transport {

RequestLog::Series RequestLog::series(std::string_view route, unsigned status, std::string_view outcome) {
  // `outcome` is accounting::label()'s: a static string, so its address names it too.
  const SeriesKey key{route.data(), route.size(), status, outcome.data()};
  std::lock_guard lock(mutex_);
  auto& s = series_[key];
  if (!s.requests) {
    s.requests = &registry_.counter(
        "lagoon_http_requests_total", "HTTP requests answered, by route, status and outcome",
        {{"route", std::string(route)}, {"status", std::to_string(status)}, {"outcome", std::string(outcome)}});
    s.duration = &registry_.histogram("lagoon_http_request_duration_seconds",
                                      "Time from the first header byte to the response written",
                                      metrics::latency_buckets(), {{"route", std::string(route)}});
  }
  return s;
}

void RequestLog::finish(const Finished& f) {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - f.started).count();
  const auto* facts = f.facts;
  const std::string_view outcome =
      accounting::label(facts && facts->outcome ? *facts->outcome : accounting::outcome_of_status(f.status));
  const Series s = series(f.route, f.status, outcome);
  s.requests->inc();
  s.duration->observe(seconds);
  if (!log::enabled(log::Level::info)) return;
  nlohmann::json line{{"request_id", f.request_id}, {"method", f.method},       {"path", f.path},
                      {"status", f.status},         {"outcome", outcome},       {"duration_ms", seconds * 1000.0},
                      {"bytes_in", f.bytes_in},     {"bytes_out", f.bytes_out}};
  if (facts && facts->user_id != 0) {
    line["key_prefix"] = keys::log_prefix(facts->key_prefix);
    line["user_id"] = facts->user_id;
  }
  if (facts && !facts->model.empty()) {
    line["model"] = facts->model;
    line["stream"] = facts->stream;
  }
  if (facts && facts->total_tokens) line["tokens"] = *facts->total_tokens;
  if (facts && facts->ttfb_ms) line["ttfb_ms"] = *facts->ttfb_ms;
  if (facts && facts->upstream_status) line["upstream_status"] = facts->upstream_status;
  if (facts && !facts->auth_denied.empty()) line["auth_denied"] = facts->auth_denied;
  log::info("access", std::move(line));
}

}  // namespace lagoon::transport
