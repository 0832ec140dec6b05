// What a chat completion costs on lagoon-mock-upstream: the token counts its usage reports, and the "cost"
// Venice adds to the answer, computed from the catalog's own model_spec.pricing so that a test can check
// a gateway's price arithmetic against the upstream's. Pure; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include <nlohmann/json_fwd.hpp>

#include "lagoon/mock/responses.hpp"

namespace lagoon::mock {

// A chat's usage: prompt_tokens_for(the body's bytes) prompt tokens, but at least the cached and
// cache-write tokens the plan asks for (they are parts of the prompt), and plan.chunks completion tokens.
Usage chat_usage(std::size_t request_body_bytes, const Plan& plan);

// The cost in 1e-12 USD under a text model's pricing (USD per 1M tokens), exact: each rate × 1e6 is a
// whole number for every price the catalog lists (rounded to one otherwise), so the sum is
//   (prompt − cached − cache_write) × input + cached × cache_input + cache_write × cache_write
//   + completion × output
// with cache_input and cache_write at the input rate when the tier has none. When prompt_tokens exceeds
// extended.context_token_threshold, extended's rates apply to the whole request, as Venice documents.
// nullopt when the pricing has no input and output USD rates, or a rate outside [0, 10000] (which with
// kMaxDirectiveTokens keeps the sum within 64 bits).
std::optional<std::uint64_t> cost_picousd(const nlohmann::json& pricing, const Usage& usage);

// The "cost" of a chat answer: the plan's x-mock-cost directives first (none; a USD amount; a Diem
// amount), else {"diem": 0, "usd": cost_picousd / 1e12} when `pricing` (the model's, nullptr when the
// catalog does not list it) prices it, else none.
std::optional<Cost> chat_cost(const Plan& plan, const nlohmann::json* pricing, const Usage& usage);

}  // namespace lagoon::mock
