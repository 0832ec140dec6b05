// lagoon-mock-upstream: a Venice-compatible upstream for tests, `make run` and benchmarks.
// Speaks Venice's wire format on every endpoint a gateway relays — chat completions (JSON and SSE),
// embeddings, images (OpenAI-compatible and native, upscale, edit, background removal), speech (binary,
// in HTTP chunks), transcriptions (multipart uploads; the duration of a WAV), the Responses API (JSON and
// typed SSE) and the model catalog — under /api/v1 or /v1, and misbehaves on request through x-mock-*
// directives (see include/lagoon/mock/responses.hpp). It logs nothing per request so it is never the
// bottleneck of a benchmark. Chat is in chat.cpp; the route table and the other endpoints in routes.cpp.
//
// usage: lagoon-mock-upstream --listen HOST:PORT --api-key KEY [--threads N]
//   (or LAGOON_MOCK_LISTEN, LAGOON_MOCK_API_KEY, LAGOON_MOCK_THREADS)
// Prints "lagoon-mock-upstream listening on HOST:PORT" once it accepts (PORT 0 picks a free one).
// Extra routes for tests, in control.cpp: GET /mock/stats (counters), GET /mock/last-request (the last
// request sent with the x-mock-record: 1 directive), POST /mock/catalog (the catalog's failures, models
// and prices until the next such request).
#include "server.hpp"

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>

namespace lagoon::mock::server {
namespace {
constexpr auto as_result = asio::as_tuple(asio::use_awaitable);
}  // namespace

Mock::Mock(Options o)
    : opts_(std::move(o)),
      ioc_(static_cast<int>(opts_.threads)),
      acceptor_(ioc_),
      catalog_(std::make_shared<const Catalog>(controlled_catalog({}))) {}

int Mock::run() {
  tcp::endpoint ep{asio::ip::make_address(opts_.host), opts_.port};
  acceptor_.open(ep.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  std::cout << "lagoon-mock-upstream listening on " << opts_.host << ":" << acceptor_.local_endpoint().port()
            << std::endl;
  asio::signal_set signals(ioc_, SIGINT, SIGTERM);
  signals.async_wait([this](auto, int) { ioc_.stop(); });
  asio::co_spawn(ioc_, accept_loop(), asio::detached);
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < opts_.threads; ++i) threads.emplace_back([this] { ioc_.run(); });
  ioc_.run();
  for (auto& t : threads) t.join();
  return 0;
}

awaitable<void> Mock::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::make_strand(ioc_), as_result);
    if (ec) {
      if (!acceptor_.is_open()) co_return;
      continue;
    }
    socket.set_option(tcp::no_delay(true));
    asio::co_spawn(socket.get_executor(), serve(std::move(socket)), asio::detached);
  }
}

Response Mock::plain(bhttp::status status, std::string body, bool keep_alive, std::string_view type) {
  Response res{status, 11};
  res.set(bhttp::field::content_type, type);
  res.body() = std::move(body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

Response Mock::error(unsigned status, std::string_view message, bool keep_alive) {
  return failure(status, error_body(status, message), keep_alive);
}

Response Mock::failure(unsigned status, std::string body, bool keep_alive) {
  auto res = plain(static_cast<bhttp::status>(status), std::move(body), keep_alive);
  if (status == 429 || status == 503) res.set(bhttp::field::retry_after, "1");
  return res;
}

bool Mock::authorized(const Request& req) {
  if (req[bhttp::field::authorization] == "Bearer " + opts_.api_key) return true;
  stats_.auth_failures++;
  return false;
}

// Waits until the peer closes; returns when it did (or the stream broke).
awaitable<void> Mock::until_client_leaves(beast::tcp_stream& stream) {
  char sink[4096];
  for (;;) {
    stream.expires_never();
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), as_result);
    if (ec) co_return;
  }
}

awaitable<void> Mock::sleep(std::chrono::milliseconds d) {
  if (d.count() <= 0) co_return;
  asio::steady_timer t(co_await asio::this_coro::executor, d);
  co_await t.async_wait(as_result);
}

void Mock::reset(beast::tcp_stream& stream) {
  stats_.resets++;
  boost::system::error_code ignored;
  stream.socket().set_option(asio::socket_base::linger(true, 0), ignored);
  stream.socket().close(ignored);
}

awaitable<bool> Mock::respond(beast::tcp_stream& stream, Response& res, bool keep_alive) {
  auto [ec, n] = co_await bhttp::async_write(stream, res, as_result);
  co_return !ec && keep_alive;
}

awaitable<bool> Mock::refuse(beast::tcp_stream& stream, const Call& call, unsigned status, std::string_view why) {
  Response res = error(status, why, call.keep_alive);
  co_return co_await respond(stream, res, call.keep_alive);
}

awaitable<std::optional<bool>> Mock::preamble(beast::tcp_stream& stream, Call& call) {
  co_await sleep(call.plan.first_byte);
  if (call.plan.stall == Plan::Stall::headers) {
    co_await until_client_leaves(stream);
    stats_.client_disconnects++;
    co_return false;
  }
  if (call.plan.status == 200) co_return std::nullopt;
  Response res = error(call.plan.status, error_message_for(call.plan.status), call.keep_alive);
  const bool go_on = co_await respond(stream, res, call.keep_alive);
  co_return go_on;
}

awaitable<bool> Mock::send_pieces(beast::tcp_stream& stream, const Call& call, Head& head, const std::string& body,
                                  bool chunked) {
  const Plan& plan = call.plan;
  head.keep_alive(call.keep_alive);
  if (chunked)
    head.chunked(true);
  else
    head.content_length(body.size());
  bhttp::response_serializer<bhttp::empty_body> sr{head};
  if (auto [ec, n] = co_await bhttp::async_write_header(stream, sr, as_result); ec) co_return false;
  const std::size_t pieces = std::max<std::size_t>(1, std::min<std::size_t>(plan.chunks, body.size()));
  const std::size_t step = body.size() / pieces;
  for (std::size_t i = 0; i < pieces; ++i) {
    if (plan.reset_after && i == *plan.reset_after) {
      reset(stream);
      co_return false;
    }
    if (i > 0) co_await sleep(plan.gap);
    const std::size_t size = i + 1 == pieces ? body.size() - i * step : step;
    const auto piece = asio::buffer(body.data() + i * step, size);
    if (size > 0) {  // an empty HTTP chunk would end the body
      boost::system::error_code ec;
      if (chunked)
        std::tie(ec, std::ignore) = co_await asio::async_write(stream, bhttp::make_chunk(piece), as_result);
      else
        std::tie(ec, std::ignore) = co_await asio::async_write(stream, piece, as_result);
      if (ec) {
        stats_.client_disconnects++;
        co_return false;
      }
    }
    if (plan.stall == Plan::Stall::body) {
      co_await until_client_leaves(stream);
      stats_.client_disconnects++;
      co_return false;
    }
  }
  if (chunked)
    if (auto [ec, n] = co_await asio::async_write(stream, bhttp::make_chunk_last(), as_result); ec) co_return false;
  co_return call.keep_alive;
}

awaitable<bool> Mock::answer(beast::tcp_stream& stream, Call& call, std::string_view content_type,
                             const std::string& model, const std::string& body, bool chunked) {
  const std::optional<bool> answered = co_await preamble(stream, call);
  if (answered) co_return *answered;
  Head head{bhttp::status::ok, 11};
  head.set(bhttp::field::content_type, content_type);
  venice_headers(head, model);
  co_return co_await send_pieces(stream, call, head, body, chunked);
}

awaitable<bool> Mock::send_sse(beast::tcp_stream& stream, const Plan& plan, const std::string& model, bool keep_alive,
                               const std::vector<std::string>& opening,
                               const std::function<std::string(unsigned)>& event_for,
                               const std::vector<std::string>& closing) {
  Head head{bhttp::status::ok, 11};
  head.set(bhttp::field::content_type, "text/event-stream");
  head.set(bhttp::field::cache_control, "no-cache");
  venice_headers(head, model);
  head.keep_alive(keep_alive);
  head.chunked(true);
  bhttp::response_serializer<bhttp::empty_body> sr{head};
  auto send = [&](const std::string& event) -> awaitable<bool> {
    auto [ec, n] = co_await asio::async_write(stream, bhttp::make_chunk(asio::buffer(event)), as_result);
    if (ec) stats_.client_disconnects++;
    co_return !ec;
  };
  if (auto [ec, n] = co_await bhttp::async_write_header(stream, sr, as_result); ec) co_return false;
  for (const auto& event : opening)
    if (!co_await send(event)) co_return false;
  for (unsigned i = 0; i < plan.chunks; ++i) {
    if (plan.reset_after && i == *plan.reset_after) {
      reset(stream);
      co_return false;
    }
    if (i > 0) co_await sleep(plan.gap);
    const std::string event = event_for(i);
    if (!co_await send(event)) co_return false;
    if (plan.stall == Plan::Stall::body) {
      co_await until_client_leaves(stream);
      stats_.client_disconnects++;
      co_return false;
    }
  }
  for (const auto& event : closing)
    if (!co_await send(event)) co_return false;
  auto [ec, n] = co_await asio::async_write(stream, bhttp::make_chunk_last(), as_result);
  if (ec) co_return false;
  stats_.streams_completed++;
  co_return keep_alive;
}

awaitable<bool> Mock::dispatch(beast::tcp_stream& stream, Request& req, std::string_view path, std::string_view query) {
  stats_.count_path(path);
  const bool keep_alive = req.keep_alive();
  const Route* route = find_route(path, req.method());
  if (!route) {
    Response res = error(404, "no such route", keep_alive);
    co_return co_await respond(stream, res, keep_alive);
  }
  if (route->counter == Counter::chat) stats_.chat_requests++;
  if (route->counter == Counter::catalog) stats_.catalog_requests++;
  const bool may_pass = route->access == Access::optional_key && req[bhttp::field::authorization].empty();
  if (!may_pass && !authorized(req)) {
    Response res = error(401, "Authentication failed", keep_alive);
    co_return co_await respond(stream, res, keep_alive);
  }
  Call call(req, std::string(path), std::string(query));
  if (call.directive("x-mock-record") == "1") record(call);
  co_return co_await (this->*route->handler)(stream, call);
}

awaitable<void> Mock::serve(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(64u << 20);
    stream.expires_after(std::chrono::minutes(5));
    auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, as_result);
    if (ec) co_return;
    Request req = parser.release();
    stats_.requests++;
    const std::string_view target = req.target();
    const std::string_view path = target.substr(0, target.find('?'));
    const std::string_view query = path.size() < target.size() ? target.substr(path.size() + 1) : std::string_view{};
    const bool keep_alive = req.keep_alive();
    bool go_on = keep_alive;
    // The gateway sends paths under its LAGOON_UPSTREAM_URL, which names Venice's /api/v1 (or /v1).
    std::string_view api = path;
    if (api.starts_with("/api/v1/"))
      api.remove_prefix(7);
    else if (api.starts_with("/v1/"))
      api.remove_prefix(3);
    else
      api = {};
    if (!api.empty()) {
      go_on = co_await dispatch(stream, req, api, query);
    } else {
      Response res = control(req, path);
      auto [wec, wn] = co_await bhttp::async_write(stream, res, as_result);
      if (wec) co_return;
    }
    if (!go_on) {
      boost::system::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
  }
}

namespace {

[[noreturn]] void usage_exit(const std::string& why) {
  std::cerr << "lagoon-mock-upstream: " << why
            << "\nusage: lagoon-mock-upstream --listen HOST:PORT --api-key KEY [--threads N]\n";
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  std::string listen = std::getenv("LAGOON_MOCK_LISTEN") ? std::getenv("LAGOON_MOCK_LISTEN") : "127.0.0.1:8090";
  if (const char* k = std::getenv("LAGOON_MOCK_API_KEY")) o.api_key = k;
  if (const char* t = std::getenv("LAGOON_MOCK_THREADS")) o.threads = static_cast<unsigned>(std::atoi(t));
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help") usage_exit("a Venice-compatible mock upstream");
    if (i + 1 >= argc) usage_exit(a + " needs a value");
    std::string v = argv[++i];
    if (a == "--listen") listen = v;
    else if (a == "--api-key") o.api_key = v;
    else if (a == "--threads") o.threads = static_cast<unsigned>(std::atoi(v.c_str()));
    else usage_exit("unknown option " + a);
  }
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) usage_exit("--listen: expected HOST:PORT");
  o.host = listen.substr(0, colon);
  int port = std::atoi(listen.substr(colon + 1).c_str());
  if (port < 0 || port > 65535) usage_exit("--listen: bad port");
  o.port = static_cast<unsigned short>(port);
  if (o.api_key.empty()) usage_exit("--api-key is required (the credential the gateway must send)");
  if (o.threads == 0 || o.threads > 64) usage_exit("--threads: expected 1..64");
  return o;
}

}  // namespace
}  // namespace lagoon::mock::server

int main(int argc, char** argv) {
  try {
    return lagoon::mock::server::Mock(lagoon::mock::server::parse(argc, argv)).run();
  } catch (const std::exception& e) {
    std::cerr << "lagoon-mock-upstream: " << e.what() << "\n";
    return 1;
  }
}
