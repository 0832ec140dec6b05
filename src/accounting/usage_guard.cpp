#include "lagoon/accounting/usage_guard.hpp"

#include "lagoon/http/request_id.hpp"

namespace lagoon::accounting {
namespace {

usage::Record first_record(const auth::KeyRecord& key, const std::string& request_id, bool client_request_id,
                           usage::Endpoint endpoint) {
  usage::Record r;
  r.endpoint = endpoint;
  r.request_id = client_request_id ? http::new_request_id() : request_id;
  r.api_key_id = key.key_id;
  r.user_id = key.user_id;
  r.started_at_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  return r;
}

}  // namespace

UsageGuard::UsageGuard(usage::Sink& sink, const auth::KeyRecord& key, const std::string& request_id,
                       bool client_request_id, usage::Endpoint endpoint, Clock::time_point started)
    : sink_(sink),
      record_(first_record(key, request_id, client_request_id, endpoint)),
      started_(started),
      in_flight_(sink_.open(record_)) {}

UsageGuard::~UsageGuard() {
  record_.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - started_).count();
  record_.outcome = std::string(label(outcome_.value_or(Outcome::aborted)));
  sink_.push(record_, in_flight_);
}

void UsageGuard::end(Outcome outcome, unsigned status) noexcept {
  outcome_ = outcome;
  record_.status_code = static_cast<std::int32_t>(status);
}

}  // namespace lagoon::accounting
