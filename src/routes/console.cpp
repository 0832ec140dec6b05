#include "lagoon/routes/console.hpp"

#include <algorithm>

#include "lagoon/http/routes.hpp"

namespace lagoon::routes {
namespace {

void guard(http::Reply& r) {
  r.set("Content-Security-Policy", std::string(kConsoleSecurityPolicy));
  r.set("X-Frame-Options", "DENY");
  r.set("Referrer-Policy", "no-referrer");
  r.set("X-Content-Type-Options", "nosniff");
  // A new binary may bring new files under the same names: the browser asks again each time.
  r.set("Cache-Control", "no-cache");
}

}  // namespace

http::Reply console_reply(std::string_view target, bool enabled) {
  const std::string_view path = http::path_of(target);
  http::Reply r;
  if (!enabled) {
    r = http::error_reply(http::ErrorKind::not_found, "Unknown request URL: GET " + std::string(path));
  } else if (path == "/console") {
    r = http::body_reply(308, "", "text/plain; charset=utf-8");
    r.set("Location", "/console/");
  } else {
    std::string_view name = path.substr(std::string_view("/console/").size());
    if (name.empty()) name = "index.html";
    const auto& files = console_files();
    const auto it = std::find_if(files.begin(), files.end(), [&](const ConsoleFile& f) { return f.path == name; });
    r = it == files.end() ? http::error_reply(http::ErrorKind::not_found, "No such console file: " + std::string(path))
                          : http::body_reply(200, std::string(it->body), it->content_type);
  }
  guard(r);
  return r;
}

}  // namespace lagoon::routes
