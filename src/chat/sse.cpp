#include "lagoon/chat/sse.hpp"

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

}  // namespace lagoon::chat
