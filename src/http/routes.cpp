#include "lagoon/http/routes.hpp"

namespace lagoon::http {
namespace {

struct Entry {
  std::string_view path;
  std::string_view method;
  Route route;
  Access access;
  bool upload = false;
};

constexpr Entry kRoutes[] = {
    {"/healthz", "GET", Route::healthz, Access::open},
    {"/readyz", "GET", Route::readyz, Access::open},
    {"/metrics", "GET", Route::metrics, Access::open},
    {"/api/v1/key", "GET", Route::key_info, Access::key},
    {"/v1/key", "GET", Route::key_info, Access::key},
    {"/api/v1/chat/completions", "POST", Route::chat_completions, Access::key},
    {"/v1/chat/completions", "POST", Route::chat_completions, Access::key},
    {"/api/v1/models", "GET", Route::models, Access::catalog},
    {"/v1/models", "GET", Route::models, Access::catalog},
    {"/api/v1/models/traits", "GET", Route::models_traits, Access::catalog},
    {"/v1/models/traits", "GET", Route::models_traits, Access::catalog},
    {"/api/v1/models/compatibility_mapping", "GET", Route::models_compatibility_mapping, Access::catalog},
    {"/v1/models/compatibility_mapping", "GET", Route::models_compatibility_mapping, Access::catalog},
    {"/api/v1/image/styles", "GET", Route::image_styles, Access::catalog},
    {"/v1/image/styles", "GET", Route::image_styles, Access::catalog},
#define LAGOON_RELAYED(path, route, upload)                        \
  {"/api/v1" path, "POST", Route::route, Access::key, upload}, \
      {"/v1" path, "POST", Route::route, Access::key, upload}
    LAGOON_RELAYED("/embeddings", embeddings, false),
    LAGOON_RELAYED("/images/generations", images_generations, false),
    LAGOON_RELAYED("/image/generate", image_generate, false),
    LAGOON_RELAYED("/image/upscale", image_upscale, true),
    LAGOON_RELAYED("/image/edit", image_edit, true),
    LAGOON_RELAYED("/image/background-remove", image_background_remove, true),
    LAGOON_RELAYED("/audio/speech", audio_speech, false),
    LAGOON_RELAYED("/audio/transcriptions", audio_transcriptions, true),
    LAGOON_RELAYED("/responses", responses, false),
#undef LAGOON_RELAYED
};

}  // namespace

std::string_view path_of(std::string_view target) noexcept {
  auto q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

RouteMatch match_route(std::string_view method, std::string_view target) noexcept {
  const std::string_view path = path_of(target);
  RouteMatch m;
  m.label = "unmatched";
  if (path == "/admin/v1" || path.substr(0, 10) == "/admin/v1/") {
    m.kind = RouteMatch::Kind::found;
    m.route = Route::admin;
    m.access = Access::admin;
    m.label = "/admin/v1";
    return m;
  }
  if (path == "/console" || path.substr(0, 9) == "/console/") {
    m.label = "/console";
    m.route = Route::console;  // also for a 405: a listener that serves no console answers 404
    if (method != "GET") {
      m.kind = RouteMatch::Kind::method_not_allowed;
      m.allow = "GET";
      return m;
    }
    m.kind = RouteMatch::Kind::found;
    return m;
  }
  for (const auto& e : kRoutes) {
    if (e.path != path) continue;
    m.label = e.path;
    if (e.method == method) {
      m.kind = RouteMatch::Kind::found;
      m.route = e.route;
      m.access = e.access;
      m.upload = e.upload;
      return m;
    }
    m.kind = RouteMatch::Kind::method_not_allowed;
    m.allow = e.method;
  }
  return m;
}

bool request_line_too_long(std::string_view method, std::string_view target, std::size_t limit) noexcept {
  constexpr std::size_t kSpacesAndVersion = 2 + 8;  // "SP … SP HTTP/1.1"
  return method.size() + target.size() + kSpacesAndVersion > limit;
}

std::string_view raw_header_problem(std::string_view header_bytes) noexcept {
  const auto end = header_bytes.find("\r\n\r\n");
  const auto block = header_bytes.substr(0, end == std::string_view::npos ? header_bytes.size() : end + 2);
  for (std::size_t lf = block.find('\n'); lf != std::string_view::npos && lf + 1 < block.size();
       lf = block.find('\n', lf + 1)) {
    if (block[lf + 1] == ' ' || block[lf + 1] == '\t') return "obsolete line folding or whitespace before a header field";
  }
  return {};
}

std::string_view field_problem(const FramingFields& f) noexcept {
  if (f.version >= 11 && f.host_fields == 0) return "missing Host header";
  if (f.host_fields > 1) return "more than one Host header";
  if (f.content_length_fields > 1) return "more than one Content-Length header";
  if (f.content_length_fields == 1 &&
      (f.content_length.empty() || f.content_length.find_first_not_of("0123456789") != std::string_view::npos))
    return "Content-Length is not a plain number";
  if (f.transfer_encoding_fields > 1) return "more than one Transfer-Encoding header";
  if (f.transfer_encoding_fields == 1) {
    if (f.content_length_fields > 0) return "both Transfer-Encoding and Content-Length";
    auto te = f.transfer_encoding;
    while (!te.empty() && (te.front() == ' ' || te.front() == '\t')) te.remove_prefix(1);
    while (!te.empty() && (te.back() == ' ' || te.back() == '\t')) te.remove_suffix(1);
    constexpr std::string_view kChunked = "chunked";
    bool chunked = te.size() == kChunked.size();
    for (std::size_t i = 0; chunked && i < te.size(); ++i)
      chunked = (te[i] | 0x20) == kChunked[i];  // ASCII letters only: '|0x20' lower-cases them
    if (!chunked) return "Transfer-Encoding other than exactly \"chunked\"";
  }
  return {};
}

}  // namespace lagoon::http
