#include "lagoon/money/money.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace lagoon::money {
namespace {

constexpr int kPicoDigits = 12;
__extension__ typedef unsigned __int128 Wide;  // products of two int64s
constexpr Wide kLimit = static_cast<Wide>(kMaxPico);

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The exponent after 'e'/'E'; nullopt when malformed or absurd.
std::optional<int> exponent(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int sign = 1;
  if (text[0] == '+' || text[0] == '-') {
    sign = text[0] == '-' ? -1 : 1;
    text.remove_prefix(1);
  }
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value > 400) return std::nullopt;
  return sign * value;
}

}  // namespace

std::optional<Pico> parse_usd(std::string_view text, int shift) {
  int exp = 0;
  if (const auto e = text.find_first_of("eE"); e != std::string_view::npos) {
    const auto parsed = exponent(text.substr(e + 1));
    if (!parsed) return std::nullopt;
    exp = *parsed;
    text = text.substr(0, e);
  }
  // The digits as one integer `mantissa` × 10^(scale): scale counts the decimal places consumed.
  Wide mantissa = 0;
  int scale = kPicoDigits + shift + exp;
  bool digits = false, point = false, rounded_up = false;
  for (char c : text) {
    if (c == '.' && !point) {
      point = true;
      continue;
    }
    if (!is_digit(c)) return std::nullopt;
    digits = true;
    if (point) --scale;
    if (mantissa > kLimit * 10) {
      // Already past any representable amount before the point; after it, further digits are below a pico.
      if (!point) return std::nullopt;
      if (c != '0') rounded_up = true;
      ++scale;
      continue;
    }
    mantissa = mantissa * 10 + static_cast<unsigned>(c - '0');
  }
  if (!digits) return std::nullopt;
  for (; scale > 0; --scale) {
    if (mantissa > kLimit) return std::nullopt;
    mantissa *= 10;
  }
  for (; scale < 0; ++scale) {
    if (mantissa % 10 != 0) rounded_up = true;
    mantissa /= 10;
  }
  if (rounded_up) ++mantissa;
  if (mantissa > kLimit) return std::nullopt;
  return static_cast<Pico>(mantissa);
}

std::optional<Pico> from_json_usd(const nlohmann::json& j, int shift) {
  if (j.is_number_unsigned()) return parse_usd(std::to_string(j.get<std::uint64_t>()), shift);
  if (j.is_number_integer()) {
    const auto v = j.get<std::int64_t>();
    if (v < 0) return std::nullopt;
    return parse_usd(std::to_string(v), shift);
  }
  if (!j.is_number_float()) return std::nullopt;
  const double v = j.get<double>();
  if (!std::isfinite(v) || v < 0) return std::nullopt;
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc{}) return std::nullopt;
  return parse_usd(std::string_view(buf, static_cast<std::size_t>(end - buf)), shift);
}

std::optional<Pico> from_json_amount(const nlohmann::json& j) {
  return j.is_string() ? parse_usd(j.get_ref<const std::string&>()) : from_json_usd(j);
}

std::string format_usd(Pico amount) {
  if (amount < 0) {
    std::string negative(1, '-');
    negative += format_usd(amount == INT64_MIN ? kMaxPico : -amount);
    return negative;
  }
  // Every request's cost goes through here (its header, its usage row): digits by hand, no printf.
  char buf[48];
  char* end = std::to_chars(buf, buf + 24, amount / kPicoPerUsd).ptr;
  std::int64_t frac = amount % kPicoPerUsd;
  if (frac != 0) {
    char digits[kPicoDigits];
    for (int i = kPicoDigits - 1; i >= 0; --i, frac /= 10) digits[i] = static_cast<char>('0' + frac % 10);
    int used = kPicoDigits;
    while (digits[used - 1] == '0') --used;
    *end++ = '.';
    for (int i = 0; i < used; ++i) *end++ = digits[i];
  }
  return std::string(buf, end);
}

Pico mul_div_up(std::int64_t a, std::int64_t b, std::int64_t divisor) noexcept {
  if (a <= 0 || b <= 0 || divisor <= 0) return 0;
  const Wide product = static_cast<Wide>(a) * static_cast<Wide>(b);
  const Wide q = (product + static_cast<Wide>(divisor) - 1) / static_cast<Wide>(divisor);
  return q > kLimit ? kMaxPico : static_cast<Pico>(q);
}

Pico add(Pico a, Pico b) noexcept { return a > kMaxPico - b ? kMaxPico : a + b; }

}  // namespace lagoon::money
