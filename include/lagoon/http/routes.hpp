// Routing: which endpoint a method and target name, and what it needs before its handler runs, decided
// from one table without I/O so it is tested with tables (routes::Router holds the handlers).
// The query string is ignored for matching; paths match exactly (no trailing-slash folding, as OpenAI).
// Pure; thread-safe.
#pragma once

#include <string_view>

namespace lagoon::http {

enum class Route {
  healthz,
  readyz,
  metrics,
  key_info,          // GET /api/v1/key: the calling key's own record (authenticated)
  chat_completions,  // POST /api/v1/chat/completions: the relay
  models,            // GET /api/v1/models: the catalog (relay/catalog.hpp), as the three below
  models_traits,
  models_compatibility_mapping,
  image_styles,
  // POST: Venice's other endpoints, relayed (relay/endpoints.hpp), in the order of endpoint_specs().
  embeddings,
  images_generations,
  image_generate,
  image_upscale,
  image_edit,
  image_background_remove,
  audio_speech,
  audio_transcriptions,
  responses,
  admin,             // anything under /admin/v1: the admin API routes it further (admin/api.hpp)
  console,           // GET /console and anything under /console/: the operator console's files
};
inline constexpr std::size_t kRouteCount = static_cast<std::size_t>(Route::console) + 1;

// What a route needs before its handler runs.
enum class Access {
  open,   // nothing: health, readiness, metrics, the console's files (its data needs the admin token)
  key,    // a Lagoon key, authenticated from the head before the body is read
  catalog,  // a Lagoon key as for `key`, unless the operator made the catalog public (catalog_public)
  admin,  // the admin token, which the admin API checks itself
};

struct RouteMatch {
  enum class Kind { found, not_found, method_not_allowed } kind = Kind::not_found;
  Route route{};
  Access access = Access::open;
  bool upload = false;  // takes a file: its body may be as large as max_upload_bytes
  std::string_view allow;  // for method_not_allowed: the Allow header value
  std::string_view label;  // bounded metric label: the route's path, or "unmatched"
};

RouteMatch match_route(std::string_view method, std::string_view target) noexcept;

// The target without its query string, for logs and matching (a query may carry secrets; never log it).
std::string_view path_of(std::string_view target) noexcept;

// True when the request line "METHOD SP target SP HTTP/1.x" is longer than `limit` bytes.
bool request_line_too_long(std::string_view method, std::string_view target, std::size_t limit) noexcept;

// Framing that Beast's parser accepts but that other parsers on the path (a load balancer, a proxy in
// front) may read differently — the raw material of request smuggling. Each returns why the request
// must be refused with 400, or an empty view when it is fine.
//
// `header_bytes`: the raw header block as received so far (it may hold the start of the body after the
// blank line; only the block is examined). Refuses obsolete line folding (RFC 9112 §5.2) and whitespace
// before the first field (§2.2).
std::string_view raw_header_problem(std::string_view header_bytes) noexcept;
// The header fields that decide where a request ends, as parsed.
struct FramingFields {
  unsigned version = 11;
  std::size_t host_fields = 0;
  std::size_t content_length_fields = 0;
  std::string_view content_length;
  std::size_t transfer_encoding_fields = 0;
  std::string_view transfer_encoding;
};

// Exactly one Host for HTTP/1.1 and at most one for 1.0 (RFC 9112 §3.2); at most one Content-Length,
// and only digits in it (a list of equal values is legal but pointless, and some parsers take its first
// element, others refuse it). Transfer-Encoding only as one field saying exactly "chunked" (any case)
// and never beside Content-Length (RFC 9112 §6.1): Beast 1.81 reads any other coding ("gzip",
// "chunked, identity", "\"chunked\"") as a request without a body, so the body would be served as the
// next request on the connection — request smuggling past any proxy that frames it otherwise.
std::string_view field_problem(const FramingFields& f) noexcept;

}  // namespace lagoon::http
