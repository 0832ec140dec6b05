// lagoon-mock-upstream: an OpenAI-compatible upstream for tests, `make run` and benchmarks.
// Speaks Venice's wire format (JSON completions, SSE streams with the final usage chunk, the models list)
// and misbehaves on request through x-mock-* headers (see include/lagoon/mock/responses.hpp).
// It logs nothing per request so it is never the bottleneck of a benchmark.
//
// usage: lagoon-mock-upstream --listen HOST:PORT --api-key KEY [--threads N]
//   (or LAGOON_MOCK_LISTEN, LAGOON_MOCK_API_KEY, LAGOON_MOCK_THREADS)
// Extra routes for tests: GET /mock/stats (counters), GET /mock/last-request (the last chat request sent
// with `x-mock-record: 1`, body and headers as received). Each x-mock-* header may instead be given in
// the request body as "x_mock": {"status": 503, …}, since a gateway forwards the body but not the headers.
#include <atomic>
#include <deque>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "lagoon/mock/catalog.hpp"
#include "lagoon/mock/responses.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using nlohmann::json;
constexpr auto as_result = asio::as_tuple(asio::use_awaitable);

struct Stats {
  std::atomic<std::uint64_t> requests{0}, chat_requests{0}, streams_started{0}, streams_completed{0},
      client_disconnects{0}, auth_failures{0}, resets{0};
  std::mutex last_mutex;
  json last_request = nullptr;

  json to_json() {
    std::lock_guard lock(last_mutex);
    return {{"requests", requests.load()},           {"chat_requests", chat_requests.load()},
            {"streams_started", streams_started.load()}, {"streams_completed", streams_completed.load()},
            {"client_disconnects", client_disconnects.load()}, {"auth_failures", auth_failures.load()},
            {"resets", resets.load()}};
  }
};

struct Options {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  std::string api_key;
  unsigned threads = 1;
};

class Mock {
 public:
  explicit Mock(Options o) : opts_(std::move(o)), ioc_(static_cast<int>(opts_.threads)), acceptor_(ioc_) {}

  int run() {
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

 private:
  awaitable<void> accept_loop() {
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

  using Request = bhttp::request<bhttp::string_body>;

  bhttp::response<bhttp::string_body> plain(bhttp::status status, std::string body, bool keep_alive,
                                            std::string_view type = "application/json") {
    bhttp::response<bhttp::string_body> res{status, 11};
    res.set(bhttp::field::content_type, type);
    res.body() = std::move(body);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
  }

  // The headers Venice puts on a model's answer: what describes the answer, and the account's state,
  // which a gateway must keep from its own clients.
  template <class Body>
  static void venice_headers(bhttp::response<Body>& res, const std::string& model) {
    res.set("x-venice-model-id", model);
    res.set("x-venice-version", "mock");
    res.set("x-venice-balance-usd", "1234.56");
    res.set("x-venice-balance-diem", "78.9");
    res.set("X-Balance-Remaining", "4.23");
    res.set("x-ratelimit-remaining-requests", "499");
  }

  bool authorized(const Request& req) {
    if (req[bhttp::field::authorization] == "Bearer " + opts_.api_key) return true;
    stats_.auth_failures++;
    return false;
  }

  // Waits until the peer closes; returns when it did (or the stream broke).
  static awaitable<void> until_client_leaves(beast::tcp_stream& stream) {
    char sink[4096];
    for (;;) {
      stream.expires_never();
      auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), as_result);
      if (ec) co_return;
    }
  }

  awaitable<void> sleep(std::chrono::milliseconds d) {
    if (d.count() <= 0) co_return;
    asio::steady_timer t(co_await asio::this_coro::executor, d);
    co_await t.async_wait(as_result);
  }

  static void reset(beast::tcp_stream& stream) {
    boost::system::error_code ignored;
    stream.socket().set_option(asio::socket_base::linger(true, 0), ignored);
    stream.socket().close(ignored);
  }

  // x-mock-raw-sse: these exact bytes as the event stream, in HTTP chunks of x-mock-fragment bytes
  // (default: all at once) with x-mock-gap-ms between them — for upstream quirks the normal stream
  // never has (CR line ends, a BOM, comments, data after [DONE], huge lines).
  awaitable<bool> send_raw(beast::tcp_stream& stream, std::string raw, std::string_view fragment,
                           std::chrono::milliseconds gap, bool keep_alive) {
    std::size_t step = raw.size();
    if (!fragment.empty()) step = std::max<std::size_t>(1, std::strtoull(std::string(fragment).c_str(), nullptr, 10));
    bhttp::response<bhttp::empty_body> head{bhttp::status::ok, 11};
    head.set(bhttp::field::content_type, "text/event-stream");
    head.keep_alive(keep_alive);
    head.chunked(true);
    bhttp::response_serializer<bhttp::empty_body> sr{head};
    if (auto [ec, n] = co_await bhttp::async_write_header(stream, sr, as_result); ec) co_return false;
    for (std::size_t at = 0; at < raw.size(); at += step) {
      if (at > 0) co_await sleep(gap);
      const std::string_view piece = std::string_view(raw).substr(at, step);
      auto [ec, n] = co_await asio::async_write(stream, bhttp::make_chunk(asio::buffer(piece)), as_result);
      if (ec) co_return false;
    }
    auto [ec, n] = co_await asio::async_write(stream, bhttp::make_chunk_last(), as_result);
    if (ec) co_return false;
    stats_.streams_completed++;
    co_return keep_alive;
  }

  void record(const Request& req) {
    json headers = json::object();
    for (const auto& f : req) headers[std::string(f.name_string())] = std::string(f.value());
    std::lock_guard lock(stats_.last_mutex);
    stats_.last_request = {{"body", req.body()}, {"headers", headers}, {"target", std::string(req.target())}};
  }

  // The SSE answer the plan asks for, misbehaviour included. Returns false when the connection must end.
  awaitable<bool> send_stream(beast::tcp_stream& stream, const lagoon::mock::Plan& plan, const std::string& id,
                              const std::string& model, bool include_usage, const lagoon::mock::Usage& usage,
                              bool keep_alive) {
    bhttp::response<bhttp::empty_body> head{bhttp::status::ok, 11};
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
    if (!co_await send(lagoon::mock::role_event(id, model, include_usage))) co_return false;
    for (unsigned i = 0; i < plan.chunks; ++i) {
      if (plan.reset_after && i == *plan.reset_after) {
        stats_.resets++;
        reset(stream);
        co_return false;
      }
      if (i > 0) co_await sleep(plan.gap);
      if (!co_await send(lagoon::mock::content_event(id, model, lagoon::mock::chunk_content(plan, i), include_usage)))
        co_return false;
      if (plan.stall == lagoon::mock::Plan::Stall::body) {
        co_await until_client_leaves(stream);
        stats_.client_disconnects++;
        co_return false;
      }
    }
    if (!co_await send(lagoon::mock::finish_event(id, model, include_usage))) co_return false;
    if (include_usage && !co_await send(lagoon::mock::usage_event(id, model, usage))) co_return false;
    if (!co_await send(std::string(lagoon::mock::kDoneEvent))) co_return false;
    auto [ec, n] = co_await asio::async_write(stream, bhttp::make_chunk_last(), as_result);
    if (ec) co_return false;
    stats_.streams_completed++;
    co_return keep_alive;
  }

  // Returns false when the connection must end.
  awaitable<bool> chat(beast::tcp_stream& stream, Request& req) {
    stats_.chat_requests++;
    const bool keep_alive = req.keep_alive();
    auto respond = [&](bhttp::response<bhttp::string_body> res) -> awaitable<bool> {
      auto [ec, n] = co_await bhttp::async_write(stream, res, as_result);
      co_return !ec && keep_alive;
    };
    if (!authorized(req))
      co_return co_await respond(plain(bhttp::status::unauthorized, lagoon::mock::error_body(401, "Authentication failed"), keep_alive));
    json body = json::parse(req.body(), nullptr, false);
    // Behaviour comes from x-mock-* headers or, through a gateway that forwards only the body, from an
    // "x_mock" object in it: {"x_mock": {"status": 503, "chunks": 3, "record": 1}}.
    const json* xm = body.is_object() && body.contains("x_mock") && body["x_mock"].is_object() ? &body["x_mock"] : nullptr;
    std::deque<std::string> values;
    auto lookup = [&](std::string_view name) -> std::string_view {
      if (auto h = req[name]; !h.empty()) return h;
      if (!xm || name.substr(0, 7) != "x-mock-") return {};
      auto it = xm->find(std::string(name.substr(7)));
      if (it == xm->end()) return {};
      values.push_back(it->is_string() ? it->get<std::string>() : it->dump());
      return values.back();
    };
    if (lookup("x-mock-record") == "1") record(req);
    const auto plan = lagoon::mock::plan_from(lookup);
    if (body.is_discarded() || !body.is_object() || !body.contains("model") || !body["model"].is_string())
      co_return co_await respond(plain(bhttp::status::bad_request, lagoon::mock::error_body(400, "model is required"), keep_alive));
    const std::string model = body["model"];
    const bool streaming = body.value("stream", false) == true;
    bool include_usage = false;
    if (auto it = body.find("stream_options"); it != body.end() && it->is_object())
      include_usage = it->value("include_usage", false) == true;
    const std::string id = "chatcmpl-mock-" + std::to_string(++ids_);
    const lagoon::mock::Usage usage{lagoon::mock::prompt_tokens_for(req.body().size()), plan.chunks};

    co_await sleep(plan.first_byte);
    if (plan.stall == lagoon::mock::Plan::Stall::headers) {
      co_await until_client_leaves(stream);
      stats_.client_disconnects++;
      co_return false;
    }
    if (plan.status != 200) {
      // A 402 words it as Venice does, naming the account's state — what a gateway must not pass on.
      const std::string message = plan.status == 402 ? "Insufficient USD or Diem balance to complete request"
                                                     : "mock upstream error " + std::to_string(plan.status);
      auto res = plain(static_cast<bhttp::status>(plan.status), lagoon::mock::error_body(plan.status, message),
                       keep_alive);
      if (plan.status == 429 || plan.status == 503) res.set(bhttp::field::retry_after, "1");
      co_return co_await respond(std::move(res));
    }
    if (!streaming) {
      auto res = plain(bhttp::status::ok, lagoon::mock::completion_body(id, model, plan, usage), keep_alive);
      venice_headers(res, model);
      co_return co_await respond(std::move(res));
    }

    stats_.streams_started++;
    if (const auto raw = lookup("x-mock-raw-sse"); !raw.empty())
      co_return co_await send_raw(stream, std::string(raw), lookup("x-mock-fragment"), plan.gap, keep_alive);
    co_return co_await send_stream(stream, plan, id, model, include_usage, usage, keep_alive);
  }

  awaitable<void> serve(tcp::socket socket) {
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
      const bool keep_alive = req.keep_alive();
      bool go_on = keep_alive;
      if ((path == "/api/v1/chat/completions" || path == "/v1/chat/completions") &&
          req.method() == bhttp::verb::post) {
        go_on = co_await chat(stream, req);
      } else {
        bhttp::response<bhttp::string_body> res;
        if ((path == "/api/v1/models" || path == "/v1/models") && req.method() == bhttp::verb::get)
          res = authorized(req) ? plain(bhttp::status::ok, *lagoon::mock::models_body(), keep_alive)
                                : plain(bhttp::status::unauthorized, lagoon::mock::error_body(401, "Authentication failed"), keep_alive);
        else if (path == "/mock/stats")
          res = plain(bhttp::status::ok, stats_.to_json().dump(), keep_alive);
        else if (path == "/mock/last-request") {
          std::lock_guard lock(stats_.last_mutex);
          res = plain(bhttp::status::ok, stats_.last_request.dump(), keep_alive);
        } else
          res = plain(bhttp::status::not_found, lagoon::mock::error_body(404, "no such route"), keep_alive);
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

  Options opts_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  Stats stats_;
  std::atomic<std::uint64_t> ids_{0};
};

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
    if (a == "--help") usage_exit("an OpenAI-compatible mock upstream");
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

int main(int argc, char** argv) {
  try {
    return Mock(parse(argc, argv)).run();
  } catch (const std::exception& e) {
    std::cerr << "lagoon-mock-upstream: " << e.what() << "\n";
    return 1;
  }
}
