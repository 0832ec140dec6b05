// The usage of a completion object (sse.hpp: usage_of_object, usage_of_chunk): a skim of the object, the
// "usage" and "cost" values read by hand, and nlohmann's SAX parser for whatever the skim cannot judge.
#include <charconv>
#include <climits>

#include <nlohmann/json.hpp>

#include "lagoon/chat/sse.hpp"
#include "lagoon/money/money.hpp"

namespace lagoon::chat {

namespace {

// Reads only what usage accounting needs from a completion object — the top-level "usage" numbers and
// whether "choices" is empty — without building a DOM of the whole answer (which, for a long
// completion, is mostly content the gateway only passes through).
class UsageSax {
 public:
  bool null() { return value(); }
  bool boolean(bool) { return value(); }
  bool number_integer(long long v) { return number(v); }
  bool number_unsigned(unsigned long long v) {
    return number(v > static_cast<unsigned long long>(LLONG_MAX) ? LLONG_MAX : static_cast<long long>(v));
  }
  bool number_float(double, const std::string& text) {
    if (depth_ == 2 && in_cost_) cost(money::parse_usd(text));
    return value();
  }
  bool string(std::string&) { return value(); }
  bool binary(nlohmann::json::binary_t&) { return value(); }
  bool start_object(std::size_t) {
    if (depth_ == 1 && key_ == "usage") {
      in_usage_ = true;
      found_ = true;
    }
    if (depth_ == 1 && key_ == "cost") in_cost_ = true;
    if (depth_ == 2 && in_usage_ && key_ == "prompt_tokens_details") in_details_ = true;
    if (depth_ == 1 && key_ == "choices") choices_elements_ += 1;  // an object as choices: not an array
    if (depth_ == 2 && in_choices_) choices_elements_ += 1;
    ++depth_;
    key_.clear();
    return true;
  }
  bool end_object() {
    --depth_;
    if (depth_ == 1) in_usage_ = in_cost_ = false;
    if (depth_ == 2) in_details_ = false;
    return true;
  }
  bool start_array(std::size_t) {
    if (depth_ == 1 && key_ == "choices") {
      in_choices_ = true;
      choices_seen_ = true;
    } else if (depth_ == 2 && in_choices_) {
      choices_elements_ += 1;
    }
    ++depth_;
    key_.clear();
    return true;
  }
  bool end_array() {
    --depth_;
    if (depth_ == 1) in_choices_ = false;
    return true;
  }
  bool key(std::string& k) {
    key_ = std::move(k);
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

  std::optional<ChunkUsage> result() const {
    if (!found_) return std::nullopt;
    ChunkUsage out = usage_;
    out.usage_only = choices_seen_ && choices_elements_ == 0;
    return out;
  }

 private:
  bool value() {
    if (depth_ == 2 && in_choices_) choices_elements_ += 1;
    return true;
  }
  bool number(long long v) {
    if (depth_ == 2 && in_usage_) {
      if (key_ == "prompt_tokens") usage_.prompt_tokens = v;
      else if (key_ == "completion_tokens") usage_.completion_tokens = v;
      else if (key_ == "total_tokens") usage_.total_tokens = v;
    }
    if (depth_ == 3 && in_details_) {
      if (key_ == "cached_tokens") usage_.cached_tokens = v;
      else if (key_ == "cache_creation_input_tokens") usage_.cache_write_tokens = v;
    }
    if (depth_ == 2 && in_cost_ && v >= 0) cost(money::parse_usd(std::to_string(v)));
    return value();
  }
  // A negative or unreadable amount is no cost at all: the price table decides then.
  void cost(std::optional<std::int64_t> pico) {
    if (key_ == "usd") usage_.cost_usd = pico;
    else if (key_ == "diem") usage_.cost_diem = pico;
  }

  int depth_ = 0;
  std::string key_;
  bool in_usage_ = false, found_ = false, in_choices_ = false, choices_seen_ = false;
  bool in_cost_ = false, in_details_ = false;
  std::size_t choices_elements_ = 0;
  ChunkUsage usage_;
};

// Structural skimming of JSON text: past a string, or a whole value, without decoding or allocating —
// brackets are matched and strings skipped (escapes included), but numbers and literals are not checked,
// which is why the values the gateway reads are then read strictly (read_members).
class Skim {
 public:
  explicit Skim(std::string_view s) : s_(s) {}
  std::size_t pos() const { return i_; }
  bool at(char c) {
    skip_space();
    return i_ < s_.size() && s_[i_] == c;
  }
  bool eat(char c) {
    if (!at(c)) return false;
    ++i_;
    return true;
  }
  bool at_end() {
    skip_space();
    return i_ == s_.size();
  }
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  // At an opening quote: past the closing one. `escaped`: whether the string held a backslash.
  bool string(bool& escaped) {
    for (++i_; i_ < s_.size(); ++i_) {
      if (s_[i_] == '"') {
        ++i_;
        return true;
      }
      if (s_[i_] == '\\') {
        escaped = true;
        ++i_;
      }
    }
    return false;
  }
  // At a value: its text when it is a JSON number (RFC 8259 grammar), else empty (nothing consumed).
  std::string_view number() {
    skip_space();
    const std::size_t start = i_;
    std::size_t i = i_;
    const auto digits = [&] {
      const std::size_t from = i;
      while (i < s_.size() && s_[i] >= '0' && s_[i] <= '9') ++i;
      return i > from;
    };
    if (i < s_.size() && s_[i] == '-') ++i;
    if (i < s_.size() && s_[i] == '0') {
      ++i;
    } else if (!digits()) {
      return {};
    }
    if (i < s_.size() && s_[i] == '.' && (++i, !digits())) return {};
    if (i < s_.size() && (s_[i] == 'e' || s_[i] == 'E')) {
      ++i;
      if (i < s_.size() && (s_[i] == '+' || s_[i] == '-')) ++i;
      if (!digits()) return {};
    }
    i_ = i;
    return s_.substr(start, i - start);
  }
  // At true, false or null: past it.
  bool literal() {
    skip_space();
    for (const std::string_view word : {"true", "false", "null"})
      if (s_.substr(i_, word.size()) == word) {
        i_ += word.size();
        return true;
      }
    return false;
  }
  // At a string, an object or an array: past it (skimmed).
  bool plain_value() {
    skip_space();
    return i_ < s_.size() && (s_[i_] == '"' || s_[i_] == '{' || s_[i_] == '[') && value();
  }
  // At a key: the key (false when it is not a plain string: escapes are for the full parse).
  bool key(std::string_view& out) {
    if (!at('"')) return false;
    const std::size_t start = i_ + 1;
    bool escaped = false;
    if (!string(escaped) || escaped) return false;
    out = s_.substr(start, i_ - 1 - start);
    return eat(':');
  }
  bool value() {
    skip_space();
    if (i_ >= s_.size()) return false;
    bool escaped = false;
    if (s_[i_] == '"') return string(escaped);
    if (s_[i_] != '{' && s_[i_] != '[') {
      const std::size_t start = i_;
      while (i_ < s_.size() && std::string_view(",}] \t\r\n").find(s_[i_]) == std::string_view::npos) ++i_;
      return i_ > start;
    }
    for (int depth = 0; i_ < s_.size();) {
      const char c = s_[i_];
      if (c == '"') {
        if (!string(escaped)) return false;
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if ((c == '}' || c == ']') && --depth == 0) {
        ++i_;
        return true;
      }
      ++i_;
    }
    return false;
  }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
};

// The count of an array's elements, at its '['; nullopt when it is not a well-formed array.
std::optional<std::size_t> skim_elements(Skim& k) {
  if (!k.eat('[')) return std::nullopt;
  if (k.eat(']')) return 0;
  for (std::size_t n = 1;; ++n) {
    if (!k.value()) return std::nullopt;
    if (k.eat(']')) return n;
    if (!k.eat(',')) return std::nullopt;
  }
}

// A JSON number's text as the SAX handler sees it: an integer (clamped to long long when it is a large
// unsigned one, as nlohmann's number_unsigned is here), or a float (nullopt: its text stays).
std::optional<long long> integer_of(std::string_view text) {
  if (text.find_first_of(".eE") != std::string_view::npos) return std::nullopt;
  if (text.front() == '-') {
    long long v = 0;
    const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    return ec == std::errc() ? std::optional<long long>(v) : std::nullopt;  // overflow: a float to nlohmann
  }
  unsigned long long v = 0;
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc()) return std::nullopt;
  return v > static_cast<unsigned long long>(LLONG_MAX) ? LLONG_MAX : static_cast<long long>(v);
}

// The members of "usage" (depth 1: tokens; "prompt_tokens_details": cached tokens) or of "cost" (usd,
// diem), read as UsageSax reads them, into `u`; false when the text is not what the full parse would
// take the same way (the caller then parses the whole answer).
bool read_members(Skim& k, bool cost, int depth, ChunkUsage& u) {
  if (!k.eat('{')) return false;
  if (k.eat('}')) return true;
  for (;;) {
    std::string_view key;
    if (!k.key(key)) return false;
    if (k.at('{') && !cost && depth == 1 && key == "prompt_tokens_details") {
      if (!read_members(k, false, 2, u)) return false;
    } else if (const auto text = k.number(); !text.empty()) {
      const auto v = integer_of(text);
      if (cost && depth == 1 && (key == "usd" || key == "diem")) {
        std::optional<std::int64_t> pico;
        if (!v) pico = money::parse_usd(text);
        else if (*v >= 0) pico = money::parse_usd(std::to_string(*v));
        if (!v || *v >= 0) (key == "usd" ? u.cost_usd : u.cost_diem) = pico;
      } else if (v && !cost && depth == 1) {
        if (key == "prompt_tokens") u.prompt_tokens = *v;
        else if (key == "completion_tokens") u.completion_tokens = *v;
        else if (key == "total_tokens") u.total_tokens = *v;
      } else if (v && !cost && depth == 2) {
        if (key == "cached_tokens") u.cached_tokens = *v;
        else if (key == "cache_creation_input_tokens") u.cache_write_tokens = *v;
      }
    } else if (!k.literal() && !k.plain_value()) {
      return false;
    }
    if (k.eat('}')) return true;
    if (!k.eat(',')) return false;
  }
}

// The fast path of usage_of_object: the top-level object is skimmed, and only "usage" and "cost" are
// parsed — a long completion's content is never decoded. nullopt when it cannot decide as the full
// parse would (a key written with escapes, a key of interest twice, anything malformed): the caller
// then parses the whole text.
std::optional<std::optional<ChunkUsage>> skim_usage(std::string_view text) {
  Skim k(text);
  std::string_view usage, cost;
  bool choices_seen = false, choices_any = false;
  std::size_t choices = 0;
  if (!k.eat('{')) return std::nullopt;
  if (!k.eat('}')) {
    for (;;) {
      std::string_view key;
      if (!k.key(key)) return std::nullopt;
      if ((key == "usage" && !usage.empty()) || (key == "cost" && !cost.empty()) || (key == "choices" && choices_any))
        return std::nullopt;
      if (key == "choices" && k.at('[')) {
        const auto n = skim_elements(k);
        if (!n) return std::nullopt;
        choices_seen = choices_any = true;
        choices = *n;
      } else {
        k.skip_space();  // so that the value's span starts at its first character
        const std::size_t start = k.pos();
        if (!k.value()) return std::nullopt;
        const std::string_view value = text.substr(start, k.pos() - start);
        if (key == "usage") usage = value;
        if (key == "cost") cost = value;
        if (key == "choices") {
          choices_any = true;
          choices = value.front() == '{' ? 1 : 0;  // an object as choices: not an array
        }
      }
      if (k.eat('}')) break;
      if (!k.eat(',')) return std::nullopt;
    }
  }
  if (!k.at_end()) return std::nullopt;
  ChunkUsage u;
  bool found = false;
  for (const bool is_cost : {false, true}) {
    const std::string_view value = is_cost ? cost : usage;
    if (value.empty() || value.front() != '{') continue;  // not an object: read as nothing, as the SAX does
    Skim members(value);
    if (!read_members(members, is_cost, 1, u) || !members.at_end()) return std::nullopt;
    found = found || !is_cost;
  }
  if (!found) return std::optional<ChunkUsage>(std::nullopt);
  u.usage_only = choices_seen && choices == 0;
  return std::optional<ChunkUsage>(u);
}

}  // namespace

std::optional<ChunkUsage> usage_of_object(std::string_view json_text) {
  if (auto skimmed = skim_usage(json_text)) return *skimmed;
  return usage_of_object_full_parse(json_text);
}

std::optional<ChunkUsage> usage_of_object_full_parse(std::string_view json_text) {
  UsageSax sax;
  if (!nlohmann::json::sax_parse(json_text.begin(), json_text.end(), &sax)) return std::nullopt;
  return sax.result();
}

std::optional<ChunkUsage> usage_of_chunk(std::string_view data) {
  // Cheap test first: most chunks carry no usage object (or "usage":null).
  auto pos = data.find("\"usage\"");
  if (pos == std::string_view::npos) return std::nullopt;
  pos = data.find_first_not_of(" \t\r\n:", pos + 7);
  if (pos == std::string_view::npos || data[pos] != '{') return std::nullopt;
  return usage_of_object(data);
}

}  // namespace lagoon::chat
