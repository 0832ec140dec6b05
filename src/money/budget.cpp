#include "lagoon/money/budget.hpp"

#include <cstdio>

namespace lagoon::money {

namespace chr = std::chrono;

std::string_view period_name(Period p) noexcept {
  switch (p) {
    case Period::total: return "total";
    case Period::daily: return "daily";
    case Period::monthly: return "monthly";
  }
  return "";
}

std::optional<Period> period_from(std::string_view name) noexcept {
  for (const Period p : {Period::total, Period::daily, Period::monthly})
    if (period_name(p) == name) return p;
  return std::nullopt;
}

Window window(Period p, SysTime now) {
  const auto today = chr::floor<chr::days>(now);
  switch (p) {
    case Period::total: return Window{SysTime{}, std::nullopt};
    case Period::daily: return Window{SysTime{today}, SysTime{today + chr::days{1}}};
    case Period::monthly: {
      const chr::year_month_day ymd{today};
      const chr::year_month first = ymd.year() / ymd.month();
      const chr::sys_days start{first / chr::day{1}};
      const chr::sys_days end{(first + chr::months{1}) / chr::day{1}};
      return Window{SysTime{start}, SysTime{end}};
    }
  }
  return Window{SysTime{}, std::nullopt};
}

std::string period_label(const Window& w) {
  const chr::year_month_day ymd{chr::floor<chr::days>(w.start)};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()));
  return buf;
}

std::string rfc3339(SysTime t) {
  const auto day = chr::floor<chr::days>(t);
  const chr::year_month_day ymd{day};
  const chr::hh_mm_ss hms{chr::floor<chr::seconds>(t - day)};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

std::int64_t nano_up(Pico p) noexcept { return p <= 0 ? 0 : p / 1000 + (p % 1000 != 0 ? 1 : 0); }
std::int64_t nano_down(Pico p) noexcept { return p <= 0 ? 0 : p / 1000; }

std::string counter_key(std::string_view prefix, bool user, std::int64_t id, const Window& w) {
  return std::string(prefix) + "budget:{" + (user ? "user:" : "key:") + std::to_string(id) + "}:" + period_label(w);
}

std::int64_t counter_ttl_seconds(const Window& w, SysTime now) {
  if (!w.end) return 0;
  // A day past the period's end: a request admitted just before midnight settles into the counter it
  // reserved in, and a reader of yesterday's spend still finds it.
  return chr::duration_cast<chr::seconds>(*w.end - now).count() + 86'400;
}

}  // namespace lagoon::money
