#include "lagoon/chat/sse.hpp"

#include <nlohmann/json.hpp>

namespace lagoon::chat {

bool SseScanner::feed(std::string_view bytes, std::vector<SseEvent>& out) {
  if (failed_) return false;
  if (!bom_checked_) {
    // A UTF-8 BOM may open the stream, possibly split across reads: hold up to three bytes until
    // it is clear whether they are one. It is kept in the event's raw bytes (forwarded as received)
    // but is not content.
    static constexpr std::string_view kBom = "\xEF\xBB\xBF";
    prefix_.append(bytes);
    if (prefix_.size() < kBom.size() && kBom.substr(0, prefix_.size()) == prefix_) return true;
    bom_checked_ = true;
    const std::string head = std::move(prefix_);
    std::string_view rest(head);
    if (rest.substr(0, kBom.size()) == kBom) {
      event_.raw.append(kBom);
      rest.remove_prefix(kBom.size());
    }
    return consume(rest, out);
  }
  return consume(bytes, out);
}

bool SseScanner::consume(std::string_view bytes, std::vector<SseEvent>& out) {
  for (const char c : bytes) {
    event_.raw += c;
    if (c == '\n') {
      if (after_cr_) {
        after_cr_ = false;  // the LF of a CRLF: the line already ended at the CR
        continue;
      }
      end_line(out);
    } else if (c == '\r') {
      after_cr_ = true;
      end_line(out);
    } else {
      after_cr_ = false;
      line_ += c;
    }
    if (event_.raw.size() > max_event_) {
      failed_ = true;
      return false;
    }
  }
  return true;
}

std::string SseScanner::take_pending() {
  std::string out = std::move(prefix_) + std::move(event_.raw);
  prefix_.clear();
  event_ = SseEvent{};
  line_.clear();
  return out;
}

void SseScanner::end_line(std::vector<SseEvent>& out) {
  if (line_.empty()) {
    // A blank line ends the event. After a CR, the LF of its CRLF arrives later and opens the next
    // event's raw bytes: the concatenation of all raw bytes is still exactly the stream.
    if (!event_.raw.empty()) {
      out.push_back(std::move(event_));
      event_ = SseEvent{};
    }
    return;
  }
  std::string_view line(line_);
  if (line.front() != ':') {
    const auto colon = line.find(':');
    const std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? std::string_view{} : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (field == "data") {
      if (event_.has_data) event_.data += '\n';
      event_.data.append(value);
      event_.has_data = true;
    }
  }
  line_.clear();
}

std::optional<ChunkUsage> usage_of_chunk(std::string_view data) {
  // Cheap test first: most chunks carry no usage object (or "usage":null).
  auto pos = data.find("\"usage\"");
  if (pos == std::string_view::npos) return std::nullopt;
  pos = data.find_first_not_of(" \t\r\n:", pos + 7);
  if (pos == std::string_view::npos || data[pos] != '{') return std::nullopt;
  const auto j = nlohmann::json::parse(data, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  auto u = j.find("usage");
  if (u == j.end() || !u->is_object()) return std::nullopt;
  ChunkUsage out;
  auto number = [&](const char* k) -> std::optional<long long> {
    auto v = u->find(k);
    if (v == u->end() || !v->is_number_integer()) return std::nullopt;
    return v->get<long long>();
  };
  out.prompt_tokens = number("prompt_tokens");
  out.completion_tokens = number("completion_tokens");
  out.total_tokens = number("total_tokens");
  auto choices = j.find("choices");
  out.usage_only = choices != j.end() && choices->is_array() && choices->empty();
  return out;
}

}  // namespace lagoon::chat
