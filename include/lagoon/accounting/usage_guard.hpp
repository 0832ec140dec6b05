// UsageGuard: exactly one usage record per authenticated, metered request. The record is opened in the
// in-flight table at admission (so a killed process still leaves it) and pushed to the usage Sink when
// the guard ends, however the request ends — with outcome `aborted` if nothing set one (the server
// stopped mid-request). Every metered route holds one; nothing else pushes usage.
// Thread-safety: one request's coroutine.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "lagoon/accounting/outcome.hpp"
#include "lagoon/auth/key_record.hpp"
#include "lagoon/usage/sink.hpp"

namespace lagoon::accounting {

class UsageGuard {
 public:
  using Clock = std::chrono::steady_clock;
  // The record's id is request_id unless the client chose that (clients may repeat their ids; usage rows
  // must not).
  UsageGuard(usage::Sink& sink, const auth::KeyRecord& key, const std::string& request_id, bool client_request_id,
             usage::Endpoint endpoint, Clock::time_point started = Clock::now());
  ~UsageGuard();
  UsageGuard(const UsageGuard&) = delete;
  UsageGuard& operator=(const UsageGuard&) = delete;

  usage::Record& operator*() noexcept { return record_; }
  usage::Record* operator->() noexcept { return &record_; }
  // How the request ended, and its status as the client saw it.
  void end(Outcome outcome, unsigned status) noexcept;
  void set_outcome(Outcome outcome) noexcept { outcome_ = outcome; }
  std::optional<Outcome> outcome() const noexcept { return outcome_; }
  // Where what the request learns is noted as it goes (valid until this guard ends).
  usage::InFlight::Entry& in_flight() noexcept { return in_flight_; }

 private:
  usage::Sink& sink_;
  usage::Record record_;
  Clock::time_point started_;
  std::optional<Outcome> outcome_;
  usage::InFlight::Entry in_flight_;
};

}  // namespace lagoon::accounting
