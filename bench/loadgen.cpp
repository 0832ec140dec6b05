// lagoon-loadgen: a closed-loop HTTP/1.1 load client for the benchmarks, for what wrk cannot do:
// stop after an exact set of requests (each key of a file once) and report the wall time they took.
//
//   lagoon-loadgen --port P --path /api/v1/key --connections 64 --keys-file F
//   lagoon-loadgen --port P --path /healthz --connections 32 --requests 100000 [--key K]
//   … [--body JSON]  (then the requests are POSTs of that body)  [--header "Name: value"]…
//
// Prints one JSON line: requests, seconds, rps, non2xx, errors, p50_us, p99_us (whole response) and
// ttfb_p50_us, ttfb_p99_us (to the response head: for streams, the first event's wait). One thread,
// keep-alive connections, requests handed out from a shared counter so the total is exact.
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
  std::vector<std::pair<std::string, std::string>> headers;
};

struct State {
  std::vector<std::string> keys;  // one per request when given
  std::size_t total = 0;
  std::size_t next = 0;
  std::size_t non2xx = 0, errors = 0;
  std::vector<double> latencies_us;
  std::vector<double> ttfb_us;
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
    for (const auto& [name, value] : o.headers) req.set(name, value);
    const auto t0 = Clock::now();
    auto [wec, wn] = co_await http::async_write(stream, req, asio::as_tuple(asio::use_awaitable));
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);  // long streams
    boost::system::error_code rec = wec;
    if (!rec) {
      auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
      rec = hec;
    }
    const auto head_at = Clock::now();
    if (!rec && !parser.is_done()) {
      auto [bec, bn] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
      rec = bec;
    }
    const auto& res = parser.get();
    if (rec) {
      ++s.errors;
      beast::error_code ignored;
      stream.socket().close(ignored);
      connected = false;
      continue;
    }
    s.latencies_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    s.ttfb_us.push_back(std::chrono::duration<double, std::micro>(head_at - t0).count());
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
    else if (a == "--header") {
      const auto colon = v.find(':');
      if (colon == std::string::npos) {
        std::cerr << "--header wants \"Name: value\"\n";
        return 2;
      }
      o.headers.emplace_back(v.substr(0, colon), v.substr(v.find_first_not_of(' ', colon + 1)));
    }
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
  std::sort(s.ttfb_us.begin(), s.ttfb_us.end());
  auto pct = [](const std::vector<double>& v, double p) {
    return v.empty() ? 0.0 : v[std::min(v.size() - 1, static_cast<std::size_t>(p * v.size()))];
  };
  std::printf(
      "{\"requests\":%zu,\"seconds\":%.4f,\"rps\":%.1f,\"non2xx\":%zu,\"errors\":%zu,\"p50_us\":%.1f,\"p99_us\":%.1f,"
      "\"ttfb_p50_us\":%.1f,\"ttfb_p99_us\":%.1f}\n",
      l.size(), seconds, static_cast<double>(l.size()) / seconds, s.non2xx, s.errors, pct(l, 0.50), pct(l, 0.99),
      pct(s.ttfb_us, 0.50), pct(s.ttfb_us, 0.99));
  return s.errors == 0 ? 0 : 1;
}
