#include "lagoon/http/reply.hpp"

#include "lagoon/http/ascii.hpp"

namespace lagoon::http {

void Reply::set(std::string_view name, std::string value) {
  for (auto& [n, v] : headers)
    if (same_name(n, name)) {
      v = std::move(value);
      return;
    }
  headers.emplace_back(std::string(name), std::move(value));
}

std::string_view Reply::header(std::string_view name) const noexcept {
  for (const auto& [n, v] : headers)
    if (same_name(n, name)) return v;
  return {};
}

Reply body_reply(unsigned status, std::string body, std::string_view content_type) {
  Reply r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = std::string(content_type);
  return r;
}

Reply error_reply(ErrorKind kind, std::string_view message, const ErrorExtras& extras) {
  Reply r = json_reply(spec(kind).status, error_body(kind, message, extras.param));
  if (kind == ErrorKind::invalid_api_key || kind == ErrorKind::key_expired) r.set("WWW-Authenticate", "Bearer");
  if (kind == ErrorKind::service_unavailable || kind == ErrorKind::rate_limited || kind == ErrorKind::concurrency_limit ||
      kind == ErrorKind::rate_limited_tokens || kind == ErrorKind::upstream_error)
    r.set("Retry-After", extras.retry_after.value_or("1"));
  if (kind == ErrorKind::method_not_allowed) r.set("Allow", std::string(extras.allow));
  return r;
}

}  // namespace lagoon::http
