// Fuzz target: the SSE scanner. Oracle: however the bytes are cut into reads (the first input byte
// picks the cut sizes), the scanner yields the same events, and every byte it was given comes back out
// (events' raw bytes, then what is pending), unless it refused an over-long event. Each event's data then
// goes through what the relay does with it (usage, the "usage":null strip, Retry-After), which must be total.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "lagoon/chat/request.hpp"
#include "lagoon/chat/sse.hpp"
#include "lagoon/upstream/retry_after.hpp"

using lagoon::chat::SseEvent;
using lagoon::chat::SseScanner;

namespace {

struct Scan {
  std::vector<SseEvent> events;
  std::string pending;
  bool ok = true;
};

Scan scan(std::string_view input, std::size_t step) {
  Scan s;
  SseScanner scanner(4096);
  for (std::size_t i = 0; i < input.size() && s.ok; i += step) s.ok = scanner.feed(input.substr(i, step), s.events);
  if (s.ok) s.pending = scanner.take_pending();
  return s;
}

bool same(const Scan& a, const Scan& b) {
  if (a.ok != b.ok) return false;
  if (!a.ok) return true;  // where a refusal is noticed may depend on the cuts
  if (a.events.size() != b.events.size() || a.pending != b.pending) return false;
  for (std::size_t i = 0; i < a.events.size(); ++i)
    if (a.events[i].raw != b.events[i].raw || a.events[i].data != b.events[i].data ||
        a.events[i].has_data != b.events[i].has_data)
      return false;
  return true;
}

// usage_of_object's fast path (a skim, then the "usage" and "cost" values read by hand) must answer as the
// full parse does on every text that is valid JSON.
void same_usage_as_the_full_parse(std::string_view text) {
  if (!nlohmann::json::accept(text)) return;
  const auto a = lagoon::chat::usage_of_object(text);
  const auto b = lagoon::chat::usage_of_object_full_parse(text);
  if (a.has_value() != b.has_value()) std::abort();
  if (a && (a->prompt_tokens != b->prompt_tokens || a->completion_tokens != b->completion_tokens ||
            a->total_tokens != b->total_tokens || a->cached_tokens != b->cached_tokens ||
            a->cache_write_tokens != b->cache_write_tokens || a->cost_usd != b->cost_usd ||
            a->cost_diem != b->cost_diem || a->usage_only != b->usage_only))
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t step = 1 + data[0] % 7;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const Scan whole = scan(input, input.size() + 1);
  const Scan cut = scan(input, step);
  if (!same(whole, cut)) std::abort();
  if (whole.ok) {
    std::string back;
    for (const auto& e : whole.events) back += e.raw;
    back += whole.pending;
    if (back != input) std::abort();
  }
  // What the relay does with each event's data, all of it upstream-controlled: nothing may throw or
  // overflow. An event's data also stands in for an upstream Retry-After value.
  constexpr std::chrono::milliseconds kCap{2000};
  same_usage_as_the_full_parse(input);
  for (const auto& e : whole.events) {
    same_usage_as_the_full_parse(e.data);
    (void)lagoon::chat::usage_of_chunk(e.data);
    (void)lagoon::chat::without_null_member(e.data, "usage");
    const auto delay = lagoon::upstream::retry_after_delay(e.data, kCap);
    if (delay && (delay->count() < 0 || *delay > kCap)) std::abort();
    (void)lagoon::upstream::retry_after_for_client(e.data, std::chrono::seconds(3600));
  }
  return 0;
}
