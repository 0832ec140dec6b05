// SseScanner: splits an upstream text/event-stream into whole events, incrementally, however the bytes
// arrive (an event split across reads, one byte at a time, CRLF, LF or CR line ends, comments, a
// leading BOM). Each event keeps its exact bytes, so the relay forwards upstream's stream unchanged,
// and its decoded `data` (the data lines joined by "\n", per the WHATWG EventSource rules), so the
// relay can recognise `[DONE]` and the usage chunk.
// An event longer than `max_event_bytes` is an error: the stream is broken or hostile.
// Pure; one instance per stream; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lagoon::chat {

struct SseEvent {
  std::string raw;   // the event's bytes as received, through its blank line
  std::string data;  // data lines joined by "\n"; empty for comment-only events
  bool has_data = false;
};

class SseScanner {
 public:
  explicit SseScanner(std::size_t max_event_bytes = 4u << 20) : max_event_(max_event_bytes) {}

  // Appends the events completed by `bytes` to `out`. Returns false (and stays false) once an event
  // has outgrown the limit.
  bool feed(std::string_view bytes, std::vector<SseEvent>& out);

  // Bytes of an event not yet complete.
  std::size_t buffered() const noexcept { return event_.raw.size() + prefix_.size(); }
  // The bytes of an incomplete last event (a stream that ended without its blank line), so they can
  // still be forwarded; the scanner starts afresh.
  std::string take_pending();

 private:
  bool consume(std::string_view bytes, std::vector<SseEvent>& out);
  void end_line(std::vector<SseEvent>& out);

  std::size_t max_event_;
  bool failed_ = false;
  bool bom_checked_ = false;
  std::string prefix_;     // the stream's first bytes while a BOM is still possible
  bool after_cr_ = false;  // the previous byte was a CR: an LF now belongs to the same line end
  std::string line_;
  SseEvent event_;
};

// What a chat completion chunk's data says about usage: the token counts when it carries a `usage`
// object, and whether it is the usage-only chunk (empty `choices`) that include_usage adds at the end.
struct ChunkUsage {
  std::optional<long long> prompt_tokens, completion_tokens, total_tokens;
  // usage.prompt_tokens_details: prompt tokens read from and written to the provider's cache.
  std::optional<long long> cached_tokens, cache_write_tokens;
  // Venice's top-level `cost` {usd, diem}, in pico-dollars, read from the numbers' own text.
  std::optional<std::int64_t> cost_usd, cost_diem;
  bool usage_only = false;
};
std::optional<ChunkUsage> usage_of_chunk(std::string_view data);

// The same for any completion object (a whole non-stream answer): nullopt when it has no top-level "usage"
// object or is not JSON. The object is skimmed (strings skipped, brackets matched) and only "usage" and
// "cost" are parsed, so a long answer's content is never decoded; text the skim cannot judge as the full
// parse would (escaped keys, repeated keys, malformed structure) is parsed whole. The skim does not check
// numbers and literals outside the values it reads: such text may still yield its usage.
std::optional<ChunkUsage> usage_of_object(std::string_view json_text);
// The same answer from a full SAX parse of the whole text alone: what usage_of_object's fast path (the
// object skimmed, only "usage" and "cost" parsed) must agree with on valid JSON (tests).
std::optional<ChunkUsage> usage_of_object_full_parse(std::string_view json_text);

}  // namespace lagoon::chat
