// Fuzz target: raw request bytes through the server's own request reading — transport::RequestReader
// (our framing checks, Beast's parser, the whole-block header limit, the checks on the parsed header,
// Beast's body parser under the body limit), then routing, request ids, the Bearer parser and, for the
// chat route, the chat body reader — for up to 8 pipelined requests per input. Oracles: the sanitizers;
// no accepted body over the limit; and the same requests served and the same refusal whether the bytes
// arrive at once or cut into reads (the first input byte picks where).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "lagoon/auth/bearer.hpp"
#include "lagoon/chat/request.hpp"
#include "lagoon/http/request_id.hpp"
#include "lagoon/http/routes.hpp"
#include "lagoon/transport/request_reader.hpp"

namespace bhttp = boost::beast::http;

namespace {

constexpr std::size_t kMaxHeader = 2048, kMaxBody = 4096, kMaxLine = 1024;


// What the server would do with `input` arriving in a first read of `first` bytes (0: `step`) and then
// reads of `step`: one line per request it would serve (method, target, body, keep-alive), then how it
// stopped — refused at a header, or "ended" inside a body (refused, or input over). Which of those
// two a broken body gets may depend on the cuts (Beast's chunk parser reports some errors only once it
// has seen a whole chunk line); the requests served may not.
std::vector<std::string> serve(std::string_view input, std::size_t first, std::size_t step) {
  std::vector<std::string> out;
  boost::beast::flat_buffer buffer;
  std::size_t fed = 0;
  auto feed = [&] {
    if (fed >= input.size()) return false;
    const std::size_t n = std::min(fed == 0 && first > 0 ? first : step, input.size() - fed);
    auto space = buffer.prepare(n);
    std::copy_n(input.data() + fed, n, static_cast<char*>(space.data()));
    buffer.commit(n);
    fed += n;
    return true;
  };
  using lagoon::transport::RequestReader;
  using Step = RequestReader::Step;
  for (int request = 0; request < 8; ++request) {
    RequestReader reader({kMaxHeader, kMaxBody, kMaxLine});
    auto st = reader.read_head(buffer);
    while (st == Step::need_more) st = feed() ? reader.read_head(buffer) : reader.head_end_of_input(buffer);
    // Which refusal (400, 414, 431) may depend on the cuts: Beast reports a bad byte at once when it
    // parses a whole line, or waits for the end of the block when the line is incomplete.
    if (st == Step::refused) {  // the server answers 400/413/414/431 and closes
      out.push_back("refused");
      return out;
    }
    if (st == Step::closed) {
      out.push_back("closed");
      return out;
    }
    (void)lagoon::http::choose_request_id(reader.head()["X-Request-Id"]);
    if (reader.body_pending()) {
      st = reader.read_body(buffer);
      while (st == Step::need_more) st = feed() ? reader.read_body(buffer) : reader.body_end_of_input();
      if (st != Step::done) {  // refused, or the input ended inside the body
        out.push_back("ended");
        return out;
      }
    }
    const auto req = reader.release();
    if (req.body().size() > kMaxBody) std::abort();
    const auto match = lagoon::http::match_route(req.method_string(), req.target());
    (void)lagoon::http::path_of(req.target());
    (void)lagoon::auth::bearer_token(req[bhttp::field::authorization]);
    if (match.kind == lagoon::http::RouteMatch::Kind::found && match.route == lagoon::http::Route::chat_completions)
      (void)lagoon::chat::parse_chat_request(req.body());
    out.push_back(std::string(req.method_string()) + " " + std::string(req.target()) + " " +
                  std::to_string(req.body().size()) + ":" + req.body() + (req.keep_alive() ? " keep-alive" : " close"));
    if (!req.keep_alive()) return out;
  }
  return out;
}

}  // namespace

// The first input byte picks the cuts — a first read of 0-504 bytes (as a server's first read holds a
// request line and some fields), then reads of 1, 6, 11 or 16 bytes; the outcome must not depend on it.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto whole = serve(input, 0, input.size() + 1);
  if (serve(input, (data[0] & 0x3f) * 8u, 1 + (data[0] >> 6) * 5u) != whole) std::abort();
  return 0;
}
