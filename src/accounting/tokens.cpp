#include "lagoon/accounting/tokens.hpp"

#include <algorithm>
#include <cstdint>

namespace lagoon::accounting {

long long estimate_tokens(std::size_t bytes) noexcept { return static_cast<long long>((bytes + 3) / 4); }

void set_tokens(usage::Record& r, std::optional<long long> p, std::optional<long long> c,
                std::optional<long long> t) noexcept {
  auto clamp = [](std::optional<long long> v) -> std::optional<std::int32_t> {
    if (!v || *v < 0) return std::nullopt;
    return static_cast<std::int32_t>(std::min<long long>(*v, INT32_MAX));
  };
  r.prompt_tokens = clamp(p);
  r.completion_tokens = clamp(c);
  r.total_tokens = clamp(t ? t : (p && c ? std::optional<long long>(*p + *c) : std::nullopt));
}

void estimate(usage::Record& r, std::size_t prompt_bytes, std::size_t completion_bytes) noexcept {
  set_tokens(r, estimate_tokens(prompt_bytes), estimate_tokens(completion_bytes), std::nullopt);
  r.tokens_estimated = true;
}

void estimate_at_least(usage::Record& r, std::size_t prompt_bytes, std::size_t completion_bytes) noexcept {
  const long long p = std::max<long long>(estimate_tokens(prompt_bytes), r.prompt_tokens.value_or(0));
  const long long c = std::max<long long>(estimate_tokens(completion_bytes), r.completion_tokens.value_or(0));
  set_tokens(r, p, c, std::nullopt);
  r.tokens_estimated = true;
}

}  // namespace lagoon::accounting
