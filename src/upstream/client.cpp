// The upstream side of the relay: the second (and last) translation unit of lagoon_core with Beast.
#include "lagoon/upstream/client.hpp"

#include <array>
#include <mutex>
#include <optional>
#include <variant>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "lagoon/config/url.hpp"
#include "lagoon/http/ascii.hpp"
#include "lagoon/http/head.hpp"
#include "lagoon/log/log.hpp"
#include "lagoon/relay/venice_headers.hpp"

namespace lagoon::upstream {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using asio::awaitable;
using Clock = std::chrono::steady_clock;
constexpr auto as_result = asio::as_tuple(asio::use_awaitable);

namespace {

// An idle kept-alive connection older than this is closed rather than reused: upstreams and load
// balancers commonly drop idle connections after 60 s or so.
constexpr auto kIdleExpiry = std::chrono::seconds(30);
constexpr std::uint32_t kHeaderLimit = 64 * 1024;
constexpr std::size_t kPieceBytes = 16 * 1024;
constexpr std::size_t kHeadReadBytes = 4 * 1024;

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

struct Connection {
  // The reactor its socket is registered with: it is only ever reused by requests served there, so
  // that no read or write of it crosses threads.
  asio::execution_context* home = nullptr;
  std::variant<std::unique_ptr<beast::tcp_stream>, std::unique_ptr<TlsStream>> stream;
  // Where the response head is read. Reserved once: Beast reads max(512, free capacity) at a time, so a
  // buffer that had grown only to 512 bytes took two reads for a 540-byte answer (one syscall more per
  // request). Not zero-filled: only the pages reads touch count.
  beast::flat_buffer buffer;
  // The exchange in progress: its response parser, and where its body pieces land. Kept with the
  // connection so that a request on a kept-alive one allocates neither.
  std::optional<http::response_parser<http::buffer_body>> parser;
  // Not zero-filled (make_unique would): an idle stream then holds only the pages its reads touched.
  std::unique_ptr<char[]> piece = std::make_unique_for_overwrite<char[]>(kPieceBytes);
  Clock::time_point idle_since{};

  Connection() { buffer.reserve(kHeadReadBytes); }

  beast::tcp_stream& tcp() {
    return std::visit(
        [](auto& s) -> beast::tcp_stream& {
          if constexpr (std::is_same_v<std::decay_t<decltype(*s)>, TlsStream>)
            return beast::get_lowest_layer(*s);
          else
            return *s;
        },
        stream);
  }
};

bool stale_connection_error(const boost::system::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == ssl::error::stream_truncated;
}

}  // namespace

struct Client::Impl : std::enable_shared_from_this<Client::Impl> {
  Impl(const config::Config& c, metrics::Registry& m)
      : cfg(c),
        endpoint(config::parse_http_url(c.upstream_url)),
        tls_context(ssl::context::tls_client),
        opened(m.counter("lagoon_upstream_connections_opened_total", "Connections opened to the upstream")),
        reused(m.counter("lagoon_upstream_connections_reused_total", "Upstream requests sent on a kept-alive connection")),
        connect_failures(m.counter("lagoon_upstream_connect_failures_total",
                                   "Upstream connection attempts that failed or timed out")),
        stale_retries(m.counter("lagoon_upstream_stale_retries_total",
                                "Requests resent because a kept-alive upstream connection had been closed")) {
    tls_context.set_default_verify_paths();
    if (!c.upstream_ca_file.empty()) {
      boost::system::error_code ec;
      tls_context.load_verify_file(c.upstream_ca_file, ec);
      if (ec) throw std::runtime_error("LAGOON_UPSTREAM_CA_FILE: cannot load " + c.upstream_ca_file + ": " + ec.message());
    }
    tls_context.set_verify_mode(ssl::verify_peer);
    // The gateway's own fields of every upstream request, each a whole line, written once.
    auto line = [](std::string_view name, std::string_view value) {
      std::string out;
      lagoon::http::HeadWriter w(out);
      if (!w.field(name, value)) throw std::runtime_error("an upstream request field cannot be written: " + std::string(name));
      return out;
    };
    defaults.emplace_back("host", line("Host", endpoint.host));
    defaults.emplace_back("user-agent", line("User-Agent", "lagoon/" LAGOON_VERSION));
    defaults.emplace_back("accept", line("Accept", "application/json, text/event-stream"));
    if (!c.upstream_api_key.empty())
      defaults.emplace_back("authorization", line("Authorization", "Bearer " + c.upstream_api_key));
    defaults.emplace_back("content-type", line("Content-Type", "application/json"));
    for (const auto& d : defaults) defaults_bytes += d.second.size();
  }

  // The idle connections of one reactor (pools are few: one per reactor thread, found by a short scan).
  std::vector<std::unique_ptr<Connection>>& pool_of(asio::execution_context* home) {
    for (auto& [ctx, pool] : idle)
      if (ctx == home) return pool;
    return idle.emplace_back(home, std::vector<std::unique_ptr<Connection>>{}).second;
  }

  std::unique_ptr<Connection> take_idle(asio::execution_context* home) {
    std::lock_guard lock(mutex);
    auto& pool = pool_of(home);
    const auto now = Clock::now();
    while (!pool.empty()) {
      auto c = std::move(pool.back());
      pool.pop_back();
      --idle_count;
      if (now - c->idle_since < kIdleExpiry) return c;
    }
    return nullptr;
  }

  void give_back(std::unique_ptr<Connection> c) {
    c->idle_since = Clock::now();
    std::lock_guard lock(mutex);
    if (idle_count >= cfg.upstream_max_idle) return;
    pool_of(c->home).push_back(std::move(c));
    ++idle_count;
  }

  awaitable<Result<std::unique_ptr<Connection>>> connect() {
    auto ex = co_await asio::this_coro::executor;
    tcp::resolver resolver(ex);
    auto [rec, results] = co_await resolver.async_resolve(endpoint.host, std::to_string(endpoint.port), as_result);
    if (rec) {
      connect_failures.inc();
      co_return Failure{Failure::Kind::connect, "cannot resolve upstream host " + endpoint.host + ": " + rec.message()};
    }
    auto conn = std::make_unique<Connection>();
    conn->home = &asio::query(ex, asio::execution::context);
    if (endpoint.tls)
      conn->stream = std::make_unique<TlsStream>(ex, tls_context);
    else
      conn->stream = std::make_unique<beast::tcp_stream>(ex);
    auto& tcp_stream = conn->tcp();
    tcp_stream.expires_after(cfg.upstream_connect_timeout);
    auto [cec, ep] = co_await tcp_stream.async_connect(results, as_result);
    if (cec) {
      connect_failures.inc();
      co_return Failure{Failure::Kind::connect, "cannot connect to the upstream " + endpoint.host + ":" +
                                                    std::to_string(endpoint.port) + ": " + cec.message()};
    }
    boost::system::error_code nodelay_ignored;
    tcp_stream.socket().set_option(tcp::no_delay(true), nodelay_ignored);
    if (endpoint.tls) {
      auto& tls = *std::get<std::unique_ptr<TlsStream>>(conn->stream);
      if (!SSL_set_tlsext_host_name(tls.native_handle(), endpoint.host.c_str())) {
        connect_failures.inc();
        co_return Failure{Failure::Kind::connect, "cannot set TLS server name " + endpoint.host};
      }
      tls.set_verify_callback(ssl::host_name_verification(endpoint.host));
      auto [hec] = co_await tls.async_handshake(ssl::stream_base::client, as_result);
      if (hec) {
        connect_failures.inc();
        co_return Failure{Failure::Kind::connect, "TLS handshake with the upstream failed: " + hec.message()};
      }
    }
    tcp_stream.expires_never();
    opened.inc();
    co_return std::move(conn);
  }

  const config::Config& cfg;
  const config::HttpEndpoint endpoint;
  ssl::context tls_context;
  // (lower-case name, "Name: value\r\n"); Content-Type only for a request with a body.
  std::vector<std::pair<std::string, std::string>> defaults;
  std::size_t defaults_bytes = 0;  // all of them together, to size a head's buffer
  std::mutex mutex;
  std::vector<std::pair<asio::execution_context*, std::vector<std::unique_ptr<Connection>>>> idle;
  std::size_t idle_count = 0;  // in all pools: LAGOON_UPSTREAM_MAX_IDLE bounds the process
  metrics::Counter &opened, &reused, &connect_failures, &stale_retries;
};

namespace {

class HttpExchange final : public Exchange {
 public:
  HttpExchange(std::shared_ptr<Client::Impl> client, std::unique_ptr<Connection> conn, Head head)
      : client_(std::move(client)), conn_(std::move(conn)), head_(std::move(head)) {}

  ~HttpExchange() override {
    if (conn_ && !aborted_ && conn_->parser->is_done() && conn_->parser->keep_alive()) client_->give_back(std::move(conn_));
  }

  const Head& head() const noexcept override { return head_; }

  awaitable<Result<std::string_view>> read_some() override {
    if (!conn_ || aborted_) co_return Failure{Failure::Kind::broken, "the upstream exchange was aborted"};
    auto& parser = *conn_->parser;
    while (!parser.is_done()) {
      auto& body = parser.get().body();
      body.data = conn_->piece.get();
      body.size = kPieceBytes;
      conn_->tcp().expires_after(client_->cfg.upstream_gap_timeout);
      auto [ec, n] = co_await std::visit(
          [&](auto& s) { return http::async_read_some(*s, conn_->buffer, parser, as_result); }, conn_->stream);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) {
        conn_.reset();
        if (ec == beast::error::timeout)
          co_return Failure{Failure::Kind::gap, "the upstream sent nothing for " +
                                                    std::to_string(client_->cfg.upstream_gap_timeout.count()) + " ms"};
        co_return Failure{Failure::Kind::broken, "reading the upstream response failed: " + ec.message()};
      }
      const std::size_t got = kPieceBytes - parser.get().body().size;
      if (got > 0) co_return std::string_view(conn_->piece.get(), got);
    }
    co_return std::string_view{};
  }

  // Closes the socket, which also ends a read in progress (with a Failure, which read_some returns).
  // The connection object stays until then: a pending read still uses its buffer and parser.
  void abort() noexcept override {
    if (!conn_ || aborted_) return;
    aborted_ = true;
    boost::system::error_code ignored;
    conn_->tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    conn_->tcp().socket().close(ignored);
  }

 private:
  std::shared_ptr<Client::Impl> client_;
  std::unique_ptr<Connection> conn_;
  Head head_;
  bool aborted_ = false;
};

}  // namespace

namespace {

// The head of an upstream request into `out` (see lagoon/http/head.hpp for why not Beast's serializer):
// the gateway's own fields first, unless the caller's replace them; the framing fields are its alone.
std::string_view request_head(std::string& out, const Client::Impl& impl, std::string_view method, std::string_view path,
                              std::string_view body, const lagoon::http::Headers& headers) {
  out.reserve(impl.defaults_bytes + 256);
  lagoon::http::HeadWriter w(out);
  w.request_line(method, impl.endpoint.base_path, path);
  for (const auto& [lower, field] : impl.defaults)
    if (!lagoon::http::has_header(headers, lower) && (lower != "content-type" || !body.empty())) out.append(field);
  w.fields(headers, [](std::string_view name) {
    return lagoon::http::framing_field(name) || lagoon::http::iequals(name, "host");
  });
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH")
    w.field("Content-Length", static_cast<std::uint64_t>(body.size()));
  return w.finish();
}

}  // namespace

Client::Client(const config::Config& cfg, metrics::Registry& metrics) : impl_(std::make_shared<Impl>(cfg, metrics)) {}

Client::~Client() = default;

awaitable<Result<std::unique_ptr<Exchange>>> Client::send(std::string_view method, std::string_view path,
                                                          std::string_view body, const lagoon::http::Headers& headers) {
  auto& impl = *impl_;
  std::string head_buffer;
  const std::string_view head = request_head(head_buffer, impl, method, path, body, headers);
  const std::array<asio::const_buffer, 2> request{asio::buffer(head.data(), head.size()),
                                                  asio::buffer(body.data(), body.size())};

  asio::execution_context* const home = &asio::query(co_await asio::this_coro::executor, asio::execution::context);
  for (int attempt = 0;; ++attempt) {
    auto conn = attempt == 0 ? impl.take_idle(home) : nullptr;
    const bool reused = conn != nullptr;
    if (!conn) {
      auto connected = co_await impl.connect();
      if (!connected) co_return connected.error();
      conn = std::move(*connected);
    }
    if (reused) impl.reused.inc();
    auto& tcp_stream = conn->tcp();
    tcp_stream.expires_after(impl.cfg.upstream_first_byte_timeout);
    auto [wec, wn] = co_await std::visit([&](auto& s) { return asio::async_write(*s, request, as_result); }, conn->stream);
    auto& parser = conn->parser.emplace();
    parser.header_limit(kHeaderLimit);
    parser.body_limit(boost::none);  // long streams are the point: no 8 MiB cap
    boost::system::error_code rec = wec;
    if (!wec) {
      auto [ec, n] = co_await std::visit(
          [&](auto& s) { return http::async_read_header(*s, conn->buffer, parser, as_result); }, conn->stream);
      rec = ec;
    }
    if (rec) {
      if (reused && stale_connection_error(rec) && conn->buffer.size() == 0) {
        impl.stale_retries.inc();
        continue;  // the upstream had closed this idle connection: a fresh one, once
      }
      if (rec == beast::error::timeout)
        co_return Failure{Failure::Kind::first_byte, "the upstream did not answer within " +
                                                         std::to_string(impl.cfg.upstream_first_byte_timeout.count()) +
                                                         " ms"};
      co_return Failure{Failure::Kind::broken, "the upstream request failed: " + rec.message()};
    }
    tcp_stream.expires_never();
    const auto& res = parser.get();
    Head head;
    head.status = res.result_int();
    head.content_type = std::string(res[http::field::content_type]);
    if (auto ra = res[http::field::retry_after]; !ra.empty()) head.retry_after = std::string(ra);
    for (const auto& f : res)
      if (relay::relayed_response_header(f.name_string()))
        head.relayed.emplace_back(std::string(f.name_string()), std::string(f.value()));
    co_return std::unique_ptr<Exchange>(
        std::make_unique<HttpExchange>(impl_, std::move(conn), std::move(head)));
  }
}

}  // namespace lagoon::upstream
