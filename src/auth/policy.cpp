#include "lagoon/auth/policy.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace lagoon::auth {

namespace chr = std::chrono;

namespace {
char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool glob_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.' || c == '/' || c == '*' || c == '@';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool digits(std::string_view s, std::size_t n, int& out) {
  if (s.size() < n) return false;
  out = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}
}  // namespace

std::optional<Group> group_from(std::string_view name) noexcept {
  for (std::size_t i = 0; i < std::size(kGroupNames); ++i)
    if (kGroupNames[i] == name) return static_cast<Group>(1u << i);
  return std::nullopt;
}

std::string_view group_name(Group g) noexcept {
  for (std::size_t i = 0; i < std::size(kGroupNames); ++i)
    if (static_cast<std::uint8_t>(g) == (1u << i)) return kGroupNames[i];
  return "";
}

// Iterative, with one backtrack point: linear in practice, never exponential whatever the pattern.
bool glob_match(std::string_view p, std::string_view t) noexcept {
  std::size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (pi < p.size() && lower(p[pi]) == lower(t[ti])) {
      ++pi;
      ++ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

bool KeyPolicy::allows_model(std::string_view model) const noexcept {
  if (models.empty()) return true;
  const auto base = model.substr(0, model.find(':'));
  if (base.empty()) return false;
  return std::any_of(models.begin(), models.end(), [&](const std::string& g) { return glob_match(g, base); });
}

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const auto item = trim(text.substr(0, comma));
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

std::optional<PolicyError> check_models(std::vector<std::string>& globs) {
  std::vector<std::string> kept;
  for (auto& g : globs) {
    if (g.empty() || g.size() > kMaxGlobLength)
      return PolicyError{"each model pattern must be 1.." + std::to_string(kMaxGlobLength) + " characters"};
    if (!std::all_of(g.begin(), g.end(), glob_char))
      return PolicyError{"model pattern \"" + g +
                         "\" may hold only letters, digits, '-', '_', '.', '/', '@' and '*' (a base model name, "
                         "without Venice's ':' suffix)"};
    if (std::find(kept.begin(), kept.end(), g) == kept.end()) kept.push_back(std::move(g));
  }
  if (kept.size() > kMaxModelGlobs) return PolicyError{"at most " + std::to_string(kMaxModelGlobs) + " model patterns"};
  globs = std::move(kept);
  return std::nullopt;
}

std::optional<PolicyError> parse_groups(const std::vector<std::string>& names, std::uint8_t& bits) {
  bits = 0;
  for (const auto& n : names) {
    const auto g = group_from(n);
    if (!g) return PolicyError{"unknown endpoint \"" + n + "\" (one of chat, embeddings, images, audio, responses)"};
    bits |= static_cast<std::uint8_t>(*g);
  }
  return std::nullopt;
}

std::vector<std::string> group_names(std::uint8_t bits) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < std::size(kGroupNames); ++i)
    if (bits & (1u << i)) out.emplace_back(kGroupNames[i]);
  return out;
}

std::optional<PolicyError> check_tags(const nlohmann::json& tags) {
  if (!tags.is_object()) return PolicyError{"tags must be a JSON object, e.g. {\"team\":\"search\"}"};
  if (tags.dump().size() > kMaxTagsBytes)
    return PolicyError{"tags must be at most " + std::to_string(kMaxTagsBytes) + " bytes of JSON"};
  return std::nullopt;
}

std::optional<std::int64_t> parse_rfc3339_us(std::string_view s) {
  int y, mo, d, h, mi, sec;
  if (s.size() < 20 || !digits(s, 4, y) || s[4] != '-' || !digits(s.substr(5), 2, mo) || s[7] != '-' ||
      !digits(s.substr(8), 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s.substr(11), 2, h) ||
      s[13] != ':' || !digits(s.substr(14), 2, mi) || s[16] != ':' || !digits(s.substr(17), 2, sec))
    return std::nullopt;
  const chr::year_month_day ymd{chr::year(y), chr::month(static_cast<unsigned>(mo)), chr::day(static_cast<unsigned>(d))};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 59) return std::nullopt;
  s.remove_prefix(19);
  std::int64_t frac_us = 0;
  if (!s.empty() && s.front() == '.') {
    s.remove_prefix(1);
    std::size_t n = 0;
    std::int64_t scale = 100000;
    while (n < s.size() && s[n] >= '0' && s[n] <= '9') {
      frac_us += (s[n] - '0') * scale;
      scale /= 10;
      ++n;
    }
    if (n == 0 || n > 9) return std::nullopt;
    s.remove_prefix(n);
  }
  std::int64_t offset_s = 0;
  if (s == "Z" || s == "z") {
  } else if (s.size() == 6 && (s[0] == '+' || s[0] == '-') && s[3] == ':') {
    int oh, om;
    if (!digits(s.substr(1), 2, oh) || !digits(s.substr(4), 2, om) || oh > 23 || om > 59) return std::nullopt;
    offset_s = (oh * 3600 + om * 60) * (s[0] == '-' ? -1 : 1);
  } else {
    return std::nullopt;
  }
  const std::int64_t days = chr::sys_days(ymd).time_since_epoch().count();
  const std::int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_s;
  return secs * 1'000'000 + frac_us;
}

std::string format_rfc3339_us(std::int64_t us) {
  const chr::sys_time<chr::microseconds> t{chr::microseconds(us)};
  const auto day = chr::floor<chr::days>(t);
  const chr::year_month_day ymd{day};
  const chr::hh_mm_ss hms{t - day};
  char buf[40];
  const auto frac = static_cast<long>(hms.subseconds().count());
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d", static_cast<int>(ymd.year()),
                              static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                              static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                              static_cast<int>(hms.seconds().count()));
  std::string out(buf, static_cast<std::size_t>(n));
  if (frac != 0) {
    std::snprintf(buf, sizeof buf, ".%06ld", frac);
    std::string f(buf);
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  return out + "Z";
}

std::optional<std::int64_t> parse_duration_s(std::string_view s) {
  if (s == "0") return 0;
  if (s.empty()) return std::nullopt;
  std::int64_t total = 0;
  while (!s.empty()) {
    std::int64_t n = 0;
    std::size_t i = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9' && i < 9) n = n * 10 + (s[i++] - '0');
    if (i == 0 || i >= s.size()) return std::nullopt;  // a number without its unit ("1h0") is a typo
    const char unit = s[i];
    const std::int64_t mult = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : unit == 'd' ? 86400 : 0;
    if (mult == 0) return std::nullopt;
    total += n * mult;
    if (total > 366 * 86400) return std::nullopt;
    s.remove_prefix(i + 1);
  }
  return total;
}

}  // namespace lagoon::auth
