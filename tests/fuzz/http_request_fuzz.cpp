// Fuzz target: raw request bytes through the server's request reading — http::HeaderReader (our
// framing checks, Beast's parser, the whole-block header limit), the checks the server makes on the
// parsed header, Beast's body parser under the body limit, routing, request ids, the Bearer parser and,
// for the chat route, the chat body reader — for up to 8 pipelined requests per input. The first input
// byte sets how the rest arrives (reads of 1 to 64 bytes, or all at once). Oracles: the sanitizers,
// and no accepted request over the header or body limit.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <boost/beast/http/string_body.hpp>

#include "lagoon/auth/bearer.hpp"
#include "lagoon/chat/request.hpp"
#include "lagoon/http/header_reader.hpp"
#include "lagoon/http/request_id.hpp"
#include "lagoon/http/routes.hpp"

namespace bhttp = boost::beast::http;
using lagoon::http::HeaderReader;

namespace {
constexpr std::size_t kMaxHeader = 2048, kMaxBody = 4096, kMaxLine = 1024;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t step = data[0] >= 192 ? size : 1 + data[0] % 64;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  boost::beast::flat_buffer buffer;
  std::size_t fed = 0;
  auto feed = [&] {
    if (fed >= input.size()) return false;
    const std::size_t n = std::min(step, input.size() - fed);
    auto space = buffer.prepare(n);
    std::copy_n(input.data() + fed, n, static_cast<char*>(space.data()));
    buffer.commit(n);
    fed += n;
    return true;
  };
  for (int request = 0; request < 8; ++request) {
    HeaderReader::Parser header_parser;
    header_parser.header_limit(static_cast<std::uint32_t>(kMaxHeader));
    header_parser.body_limit(kMaxBody);
    HeaderReader reader(header_parser, kMaxHeader);
    auto st = reader.step(buffer);
    while (st == HeaderReader::Step::need_more) st = feed() ? reader.step(buffer) : reader.end_of_input(buffer);
    if (st == HeaderReader::Step::failed) return 0;  // the server answers 400/413/414/431 and closes
    const auto& head = header_parser.get();
    (void)lagoon::http::request_line_too_long(head.method_string(), head.target(), kMaxLine);
    if (!lagoon::http::field_problem(head.version(), head.count(bhttp::field::host),
                                     head.count(bhttp::field::content_length), head[bhttp::field::content_length])
             .empty())
      return 0;
    (void)lagoon::http::choose_request_id(head["X-Request-Id"]);

    bhttp::request_parser<bhttp::string_body> parser(std::move(header_parser));
    parser.body_limit(kMaxBody);
    while (!parser.is_done()) {
      if (buffer.size() > 0) {
        boost::system::error_code ec;
        buffer.consume(parser.put(buffer.data(), ec));
        if (ec && ec != bhttp::error::need_more) return 0;
        if (parser.is_done()) break;
      }
      if (!feed()) return 0;  // the client went away mid-body
    }
    const auto& req = parser.get();
    if (req.body().size() > kMaxBody) std::abort();
    const auto match = lagoon::http::match_route(req.method_string(), req.target());
    (void)lagoon::http::path_of(req.target());
    (void)lagoon::auth::bearer_token(req[bhttp::field::authorization]);
    if (match.kind == lagoon::http::RouteMatch::Kind::found && match.route == lagoon::http::Route::chat_completions)
      (void)lagoon::chat::parse_chat_request(req.body());
    if (!req.keep_alive()) return 0;
  }
  return 0;
}
