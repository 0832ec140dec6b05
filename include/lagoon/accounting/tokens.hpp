// Token counts on a usage record: the upstream's own numbers when it sent them, an estimate (about four
// bytes a token) when it did not, and never less than certainly spent when a client left early.
// Pure; thread-safe.
#pragma once

#include <cstddef>
#include <optional>

#include "lagoon/usage/record.hpp"

namespace lagoon::accounting {

long long estimate_tokens(std::size_t bytes) noexcept;

// The upstream's counts, clamped to the column's range; a missing total is prompt + completion.
void set_tokens(usage::Record& r, std::optional<long long> prompt, std::optional<long long> completion,
                std::optional<long long> total) noexcept;

// No usage from the upstream: estimated from the request body and the completion text seen.
void estimate(usage::Record& r, std::size_t prompt_bytes, std::size_t completion_bytes) noexcept;

// A client that left before the stream's final usage chunk is billed at least what it certainly cost:
// the whole prompt's estimate and the completion seen so far — or the upstream's running totals where
// they say more. Leaving early must not be a way to pay for less than was spent.
void estimate_at_least(usage::Record& r, std::size_t prompt_bytes, std::size_t completion_bytes) noexcept;

}  // namespace lagoon::accounting
