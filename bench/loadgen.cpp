// lagoon-loadgen: a closed-loop HTTP/1.1 load client for the benchmarks, for what wrk cannot do:
// stop after an exact set of requests (each key of a file once) and report the wall time they took.
//
//   lagoon-loadgen --port P --path /api/v1/key --connections 64 --keys-file F
//   lagoon-loadgen --port P --path /healthz --connections 32 --requests 100000 [--key K]
//   … [--body JSON]  (then the requests are POSTs of that body)
//
// Prints one JSON line: requests, seconds, rps, non2xx, errors, p50_us, p99_us. One thread, keep-alive
// connections, requests handed out from a shared counter so the total is exact.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  unsigned short port = 8080;
  std::string path = "/";
  unsigned connections = 16;
  std::size_t requests = 0;
  std::string key;
  std::string keys_file;
  std::string body;  // non-empty: POST it as application/json
};

struct State {
  std::vector<std::string> keys;  // one per request when given
  std::size_t total = 0;
  std::size_t next = 0;
  std::size_t non2xx = 0, errors = 0;
  std::vector<double> latencies_us;
};

asio::awaitable<void> worker(const Options& o, State& s) {
  auto ex = co_await asio::this_coro::executor;
  beast::tcp_stream stream(ex);
  bool connected = false;
  beast::flat_buffer buffer;
  while (s.next < s.total) {
    const std::size_t i = s.next++;
    if (!connected) {
      auto [ec] = co_await stream.async_connect(
          asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), o.port), asio::as_tuple(asio::use_awaitable));
      if (ec) {
        ++s.errors;
        continue;
      }
      stream.socket().set_option(asio::ip::tcp::no_delay(true));
      connected = true;
    }
    http::request<http::string_body> req{o.body.empty() ? http::verb::get : http::verb::post, o.path, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!o.body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = o.body;
      req.prepare_payload();
    }
    const std::string& key = s.keys.empty() ? o.key : s.keys[i];
    if (!key.empty()) req.set(http::field::authorization, "Bearer " + key);
    const auto t0 = Clock::now();
    auto [wec, wn] = co_await http::async_write(stream, req, asio::as_tuple(asio::use_awaitable));
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);  // long streams
    auto [rec, rn] = wec ? std::make_tuple(wec, std::size_t{0})
                         : co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    const auto& res = parser.get();
    if (wec || rec) {
      ++s.errors;
      beast::error_code ignored;
      stream.socket().close(ignored);
      connected = false;
      continue;
    }
    s.latencies_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (res.result_int() / 100 != 2) ++s.non2xx;
    if (!res.keep_alive()) {
      beast::error_code ignored;
      stream.socket().close(ignored);
      connected = false;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--port") o.port = static_cast<unsigned short>(std::stoi(v));
    else if (a == "--path") o.path = v;
    else if (a == "--connections") o.connections = static_cast<unsigned>(std::stoul(v));
    else if (a == "--requests") o.requests = std::stoull(v);
    else if (a == "--key") o.key = v;
    else if (a == "--keys-file") o.keys_file = v;
    else if (a == "--body") o.body = v;
    else {
      std::cerr << "unknown option " << a << "\n";
      return 2;
    }
  }
  State s;
  if (!o.keys_file.empty()) {
    std::ifstream in(o.keys_file);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) s.keys.push_back(line);
    s.total = s.keys.size();
  } else {
    s.total = o.requests;
  }
  s.latencies_us.reserve(s.total);
  asio::io_context ioc(1);
  for (unsigned c = 0; c < o.connections; ++c) asio::co_spawn(ioc, worker(o, s), asio::detached);
  const auto t0 = Clock::now();
  ioc.run();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  auto& l = s.latencies_us;
  std::sort(l.begin(), l.end());
  auto pct = [&](double p) { return l.empty() ? 0.0 : l[std::min(l.size() - 1, static_cast<std::size_t>(p * l.size()))]; };
  std::printf(
      "{\"requests\":%zu,\"seconds\":%.4f,\"rps\":%.1f,\"non2xx\":%zu,\"errors\":%zu,\"p50_us\":%.1f,\"p99_us\":%.1f}\n",
      l.size(), seconds, static_cast<double>(l.size()) / seconds, s.non2xx, s.errors, pct(0.50), pct(0.99));
  return s.errors == 0 ? 0 : 1;
}
