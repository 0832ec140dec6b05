// The console's parts of parse_call: the user and key listings' filters and the usage series' query
// string. Pure.
#include "call_parts.hpp"

#include <charconv>
#include <limits>

namespace lagoon::admin::parts {
namespace {

// A whole number in [min, max], or nullopt.
std::optional<std::int64_t> number_in(const std::string& text, std::int64_t min, std::int64_t max) {
  std::int64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || n < min || n > max) return std::nullopt;
  return n;
}

// limit and offset of a listing.
std::optional<ApiError> page_of(const Query& query, std::int64_t& limit, std::int64_t& offset) {
  if (const auto it = query.find("limit"); it != query.end()) {
    const auto n = number_in(it->second, 1, db::kMaxPageSize);
    if (!n) return bad("\"limit\" must be a whole number from 1 to " + std::to_string(db::kMaxPageSize), "limit");
    limit = *n;
  }
  if (const auto it = query.find("offset"); it != query.end()) {
    const auto n = number_in(it->second, 0, std::numeric_limits<std::int32_t>::max());
    if (!n) return bad("\"offset\" must be a whole number, 0 or more", "offset");
    offset = *n;
  }
  return std::nullopt;
}

std::optional<std::string> text_of(const Query& query) {
  const auto it = query.find("q");
  if (it == query.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

}  // namespace

std::variant<Call, ApiError> users_list_call(std::string_view target) {
  auto q = parse_query(target, {"q", "status", "limit", "offset"});
  if (auto* e = std::get_if<ApiError>(&q)) return std::move(*e);
  const Query& query = std::get<Query>(q);
  Call call;
  call.op = Call::Op::list_users;
  call.users.text = text_of(query);
  if (const auto it = query.find("status"); it != query.end()) {
    if (it->second != "active" && it->second != "inactive")
      return bad("\"status\" must be active or inactive", "status");
    call.users.active = it->second == "active";
  }
  if (auto e = page_of(query, call.users.limit, call.users.offset)) return std::move(*e);
  return call;
}

std::variant<Call, ApiError> keys_list_call(std::string_view target) {
  auto q = parse_query(target, {"user", "q", "status", "limit", "offset"}, {"tag"});
  if (auto* e = std::get_if<ApiError>(&q)) return std::move(*e);
  const Query& query = std::get<Query>(q);
  Call call;
  // `?user=` alone answers as it always has, and as `lagoon keys list --user`: every key of the user,
  // oldest first, as key_json shows them.
  if (query.size() == 1 && query.begin()->first == "user" && !query.begin()->second.empty()) {
    call.op = Call::Op::list_keys;
    call.user_ref = query.begin()->second;
    return call;
  }
  call.op = Call::Op::find_keys;
  if (const auto it = query.find("user"); it != query.end()) {
    if (it->second.empty()) return bad("\"user\" must be a user's id or name", "user");
    call.keys.user_ref = it->second;
  }
  call.keys.text = text_of(query);
  if (const auto it = query.find("status"); it != query.end()) {
    call.keys.status = db::key_status_from(it->second);
    if (!call.keys.status) return bad("\"status\" must be active, revoked, expired or user_inactive", "status");
  }
  for (auto [it, end] = query.equal_range("tag"); it != end; ++it)
    if (auto e = tag_filter(it->second, call.keys.tags)) return std::move(*e);
  if (auto e = page_of(query, call.keys.limit, call.keys.offset)) return std::move(*e);
  return call;
}

std::variant<Call, ApiError> series_call(std::string_view target) {
  auto q = parse_query(target, {"key", "user", "from", "to", "by", "bucket", "top", "format"}, {"tag"});
  if (auto* e = std::get_if<ApiError>(&q)) return std::move(*e);
  Query query = std::get<Query>(q);
  Call call;
  call.op = Call::Op::usage_series;
  if (const auto it = query.find("by"); it != query.end()) {
    if (it->second != "none") {
      call.series.scope.by = db::grouping_from(it->second);
      if (!call.series.scope.by || call.series.scope.by == db::Grouping::day)
        return bad("\"by\" must be model, key, user or none", "by");
    }
    query.erase(it);
  } else {
    call.series.scope.by = db::Grouping::model;
  }
  if (auto e = usage_query(query, call.series.scope)) return std::move(*e);
  if (auto e = usage_scope(query, call.series.scope)) return std::move(*e);
  if (const auto it = query.find("bucket"); it != query.end()) {
    const auto b = db::bucket_from(it->second);
    if (!b) return bad("\"bucket\" must be hour or day", "bucket");
    call.series.bucket = *b;
  }
  if (const auto it = query.find("top"); it != query.end()) {
    const auto n = number_in(it->second, 1, db::kMaxSeries);
    if (!n) return bad("\"top\" must be a whole number from 1 to " + std::to_string(db::kMaxSeries), "top");
    call.series.top = static_cast<int>(*n);
  }
  if (const auto it = query.find("format"); it != query.end()) {
    if (it->second != "json" && it->second != "csv") return bad("\"format\" must be json or csv", "format");
    call.csv = it->second == "csv";
  }
  return call;
}

}  // namespace lagoon::admin::parts
