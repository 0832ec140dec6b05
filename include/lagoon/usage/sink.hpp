// Sink: where a request's usage record goes — opened at admission (kept in the crash-safe in-flight
// table) and pushed once at its end. usage::Pipeline is the real one; unit tests of the request path
// use a fake that keeps the records in memory.
// Thread-safety: both calls from any thread, never blocking.
#pragma once

#include "lagoon/usage/in_flight.hpp"
#include "lagoon/usage/record.hpp"

namespace lagoon::usage {

class Sink {
 public:
  virtual ~Sink() = default;
  // A request begins; an empty Entry when it cannot be tracked (the request goes on untracked).
  virtual InFlight::Entry open(const Record& r) noexcept = 0;
  // The request ended with `r`; `entry` becomes empty. False when the record could not be queued.
  virtual bool push(const Record& r, InFlight::Entry& entry) noexcept = 0;
};

}  // namespace lagoon::usage
