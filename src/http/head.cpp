#include "lagoon/http/head.hpp"

#include <array>
#include <charconv>

#include "lagoon/http/ascii.hpp"

namespace lagoon::http {

namespace {

// tchar of RFC 9110 §5.6.2, as a table: every field of every message goes through it.
constexpr std::array<bool, 256> kTokenChars = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (const char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

bool safe_name(std::string_view name) noexcept {
  if (name.empty()) return false;
  for (const char c : name)
    if (!kTokenChars[static_cast<unsigned char>(c)]) return false;
  return true;
}

bool safe_value(std::string_view value) noexcept {
  for (const char c : value)
    if (c == '\r' || c == '\n' || c == '\0') return false;
  return true;
}

}  // namespace

void HeadWriter::request_line(std::string_view method, std::string_view target, std::string_view target_tail) {
  out_.append(method).append(" ").append(target).append(target_tail).append(" HTTP/1.1\r\n");
}

void HeadWriter::status_line(unsigned status, std::string_view reason) {
  char digits[8];
  const auto end = std::to_chars(digits, digits + sizeof digits, status).ptr;
  out_.append("HTTP/1.1 ").append(digits, end).append(" ").append(reason).append("\r\n");
}

bool HeadWriter::field(std::string_view name, std::string_view value) {
  if (!safe_name(name) || !safe_value(value)) return false;
  out_.append(name).append(": ").append(value).append("\r\n");
  return true;
}

void HeadWriter::field(std::string_view name, std::uint64_t value) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  field(name, std::string_view(digits, static_cast<std::size_t>(end - digits)));
}

std::string_view HeadWriter::finish() {
  out_.append("\r\n");
  return out_;
}

bool HeadWriter::named_after(const Headers& headers, std::size_t i) noexcept {
  for (std::size_t j = i + 1; j < headers.size(); ++j)
    if (same_name(headers[i].first, headers[j].first)) return true;
  return false;
}

bool framing_field(std::string_view name) noexcept {
  return iequals(name, "content-length") || iequals(name, "transfer-encoding") || iequals(name, "connection");
}

bool has_header(const Headers& headers, std::string_view lower_name) noexcept {
  for (const auto& [name, value] : headers)
    if (iequals(name, lower_name)) return true;
  return false;
}

}  // namespace lagoon::http
