// FastScan: the SAX handler behind parse_chat_request's fast path (what it accepts is said on the class).
// Private to src/chat and included only by request.cpp, so that request.cpp stays one translation unit:
// the fuzz build (tests/fuzz/fuzz_build.cmake) compiles it alone.
//
// Thread-safety: one instance per parse; not shared.
#pragma once

#include <climits>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace lagoon::chat::detail {

// The fast path: one SAX pass that reads what the gateway needs without building a document of the
// whole request (most of which is message text it only passes on). It gives up — and the DOM path in
// request.cpp answers, with its exact error messages — on anything unusual: invalid JSON, a field of
// the wrong type, a repeated top-level key, or a stream_options object that must be rewritten.
class FastScan {
 public:
  struct Facts {
    std::string model;
    bool model_set = false, messages_ok = false, stream = false, client_wants_usage = false;
    enum class Options { absent, null, object } options = Options::absent;
    std::optional<std::int64_t> max_completion_tokens, max_tokens;
    std::size_t prompt_chars = 0;
  };

  bool null() { return top_value(Kind::null, 0) && other_value(); }
  bool boolean(bool b) {
    if (!top_value(Kind::boolean, b ? 1 : 0)) return false;
    if (in(Frame::stream_options) && key() == "include_usage") f_.client_wants_usage = b;
    return other_value();
  }
  bool number_integer(long long v) { return top_value(Kind::integer, v) && other_value(); }
  bool number_unsigned(unsigned long long v) {
    if (v > static_cast<unsigned long long>(INT64_MAX)) return !at_top() ? other_value() : false;
    return number_integer(static_cast<long long>(v));
  }
  bool number_float(double, const std::string&) { return top_value(Kind::other, 0) && other_value(); }
  bool binary(nlohmann::json::binary_t&) { return false; }
  bool string(std::string& s) {
    if (at_top()) {
      if (key() != "model") return top_value(Kind::other, 0);
      if (s.empty()) return false;
      f_.model = std::move(s);
      f_.model_set = true;
      return true;
    }
    if ((in(Frame::message) && key() == "content") || (in(Frame::part) && key() == "text")) {
      current().chars = s.size();  // the last one counts, as in a parsed document
      return true;
    }
    return other_value();
  }
  bool start_object(std::size_t) { return open(true); }
  bool start_array(std::size_t) { return open(false); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(std::string& k) {
    if (at_top()) {
      for (const auto& seen : top_keys_)
        if (seen == k) return false;  // repeated: nlohmann keeps the last; let the DOM path decide
      top_keys_.push_back(k);
    }
    stack_.back().key = std::move(k);
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

  const Facts& facts() const { return f_; }
  bool complete() const { return done_ && f_.model_set && f_.messages_ok; }

 private:
  enum class Frame { top, messages, message, content, part, stream_options, other };
  enum class Kind { null, boolean, integer, other };
  struct Level {
    Frame frame;
    std::string key;
    std::size_t chars = 0;  // message: its content's characters; content array: sum of its parts; part: text
  };

  bool at_top() const { return stack_.size() == 1 && stack_.back().frame == Frame::top; }
  bool in(Frame f) const { return !stack_.empty() && stack_.back().frame == f; }
  Level& current() { return stack_.back(); }
  const std::string& key() const { return stack_.back().key; }

  // A scalar at the top level: only the fields the gateway reads are checked, each for its type.
  bool top_value(Kind kind, long long v) {
    if (!at_top()) return true;
    const std::string& k = key();
    if (k == "model" || k == "messages") return false;
    if (k == "stream") {
      if (kind == Kind::boolean) f_.stream = v != 0;
      return kind == Kind::null || kind == Kind::boolean;
    }
    if (k == "max_tokens" || k == "max_completion_tokens") {
      auto& slot = k == "max_tokens" ? f_.max_tokens : f_.max_completion_tokens;
      if (kind == Kind::null) return true;
      if (kind != Kind::integer || v < 0) return false;
      slot = v;
      return true;
    }
    if (k == "stream_options") {
      if (kind != Kind::null) return false;
      f_.options = Facts::Options::null;
    }
    return true;
  }
  // Any other value below the top: one that replaces a message's content or a part's text counts 0.
  bool other_value() {
    if ((in(Frame::message) && key() == "content") || (in(Frame::part) && key() == "text")) current().chars = 0;
    return true;
  }

  bool open(bool object) {
    if (stack_.empty()) {
      if (!object) return false;
      stack_.push_back({Frame::top, {}, 0});
      return true;
    }
    Frame next = Frame::other;
    if (at_top()) {
      const std::string& k = key();
      if (k == "model" || k == "stream" || k == "max_tokens" || k == "max_completion_tokens") return false;
      if (k == "messages") {
        if (object) return false;
        f_.messages_ok = true;
        next = Frame::messages;
      } else if (k == "stream_options") {
        if (!object) return false;
        f_.options = Facts::Options::object;
        next = Frame::stream_options;
      }
    } else if (in(Frame::messages) && object) {
      next = Frame::message;
    } else if (in(Frame::message) && key() == "content") {
      current().chars = 0;  // a later content replaces an earlier one
      next = object ? Frame::other : Frame::content;
    } else if (in(Frame::content) && object) {
      next = Frame::part;
    }
    stack_.push_back({next, {}, 0});
    return true;
  }

  bool close() {
    const Level done = std::move(stack_.back());
    stack_.pop_back();
    if (stack_.empty()) {
      done_ = true;
      return true;
    }
    if (done.frame == Frame::message) f_.prompt_chars += done.chars;
    if (done.frame == Frame::part) current().chars += done.chars;            // into its content array
    if (done.frame == Frame::content) current().chars = done.chars;          // the message's content
    return true;
  }

  Facts f_;
  std::vector<Level> stack_;
  std::vector<std::string> top_keys_;
  bool done_ = false;
};

}  // namespace lagoon::chat::detail
