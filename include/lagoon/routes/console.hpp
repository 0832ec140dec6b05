// The operator console's files: console/ (HTML, CSS, JS, SVG; the chart library vendored from npm),
// embedded in the binary at build time by cmake/embed_console.cmake, so the page works air-gapped and
// needs nothing at run time. console_reply() answers GET /console/… with a file and the headers that
// keep the page to its own origin: a strict Content-Security-Policy (no inline script or style, only
// the origin's scripts and the admin API), no framing, no referrer, no sniffing. The files show no
// data: everything the page shows comes from the admin API, with the admin token.
// Pure; thread-safe (constant tables).
#pragma once

#include <string_view>
#include <vector>

#include "lagoon/http/reply.hpp"

namespace lagoon::routes {

struct ConsoleFile {
  std::string_view path;  // relative to console/, e.g. "index.html", "js/keys.js"
  std::string_view content_type;
  std::string_view body;
};

// Generated at build time, in path order.
const std::vector<ConsoleFile>& console_files();

inline constexpr std::string_view kConsoleSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

// GET `target`: "/console" → 308 to "/console/"; "/console/" → index.html; "/console/<path>" → that
// file; anything else under /console/ → 404. When `enabled` is false (no admin token, or the console
// has a listener of its own) every answer is 404.
http::Reply console_reply(std::string_view target, bool enabled);

}  // namespace lagoon::routes
