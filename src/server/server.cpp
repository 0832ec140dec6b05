// The only translation unit of lagoon_core that includes Beast: each one costs ~25 s to compile.
#include "lagoon/server/server.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "lagoon/admin/api.hpp"
#include "lagoon/auth/authenticator.hpp"
#include "lagoon/db/async_pool.hpp"
#include "lagoon/db/pool.hpp"
#include "lagoon/http/errors.hpp"
#include "lagoon/http/header_reader.hpp"
#include "lagoon/http/request_id.hpp"
#include "lagoon/http/routes.hpp"
#include "lagoon/keys/api_key.hpp"
#include "lagoon/log/log.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/ratelimit/limiter.hpp"
#include "lagoon/redis/client.hpp"
#include "lagoon/server/notify.hpp"
#include "lagoon/server/readiness.hpp"
#include "lagoon/upstream/client.hpp"
#include "lagoon/usage/pipeline.hpp"
#include "lagoon/util/thread_name.hpp"
#include "chat.hpp"
#include "responses.hpp"

namespace lagoon::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using Clock = std::chrono::steady_clock;
using Request = bhttp::request<bhttp::string_body>;
constexpr auto as_result = asio::as_tuple(asio::use_awaitable);
// After the drain deadline, how long cut requests get to write their last words.
constexpr std::chrono::milliseconds kCutGrace{2000};

// A bounded outcome label for requests that have no usage outcome of their own.
std::string_view outcome_of_status(unsigned status) {
  if (status < 400) return "ok";
  if (status == 401) return "unauthorized";
  if (status == 429) return "rate_limited";
  if (status == 503) return "unavailable";
  return status < 500 ? "client_error" : "server_error";
}

// What the drain needs to reach a connection. Only touched on the connection's own strand.
struct ConnectionEntry {
  explicit ConnectionEntry(asio::any_io_executor ex) : executor(std::move(ex)) {}
  asio::any_io_executor executor;
  beast::tcp_stream* stream = nullptr;  // null once the connection coroutine has ended
  bool idle = true;                     // waiting for a request, so it may be closed at once on drain
};

struct ServerMetrics {
  explicit ServerMetrics(metrics::Registry& r)
      : registry(r),
        connections_active(r.gauge("lagoon_http_connections_active", "Client connections open now")),
        connections_total(r.counter("lagoon_http_connections_total", "Client connections accepted")),
        connections_rejected(r.counter("lagoon_http_connections_rejected_total",
                                       "Client connections closed at once because max_connections was reached")),
        bodies_refused(r.counter("lagoon_http_bodies_refused_total",
                                 "Requests answered 503 because max_buffered_body_bytes was reached")) {}

  void request(std::string_view route, unsigned status, std::string_view outcome, double seconds) {
    registry
        .counter("lagoon_http_requests_total", "HTTP requests answered, by route, status and outcome",
                 {{"route", std::string(route)}, {"status", std::to_string(status)}, {"outcome", std::string(outcome)}})
        .inc();
    registry
        .histogram("lagoon_http_request_duration_seconds", "Time from the first header byte to the response written",
                   metrics::latency_buckets(), {{"route", std::string(route)}})
        .observe(seconds);
  }

  metrics::Registry& registry;
  metrics::Gauge& connections_active;
  metrics::Counter& connections_total;
  metrics::Counter& connections_rejected;
  metrics::Counter& bodies_refused;
};

// The memory all connections' request bodies may take together (max_buffered_body_bytes). A body's whole
// size is reserved before its first byte is read — its Content-Length, or max_body_bytes when chunked —
// and released when its request is over. Thread-safe. Reservations live in connection coroutines, which
// the io_context may destroy after the server's other members: the budget must outlive the io_context.
class BodyBudget {
 public:
  BodyBudget(std::size_t limit, metrics::Registry& r)
      : limit_(limit),
        gauge_(r.gauge("lagoon_http_body_bytes_reserved",
                       "Request body bytes being received or held now, all connections together")) {}

  class Reservation {
   public:
    Reservation(BodyBudget& b, std::size_t n) : budget_(&b), bytes_(n) {}
    Reservation(Reservation&& o) noexcept : budget_(std::exchange(o.budget_, nullptr)), bytes_(o.bytes_) {}
    Reservation& operator=(Reservation&&) = delete;
    ~Reservation() {
      if (budget_) budget_->release(bytes_);
    }

   private:
    BodyBudget* budget_;
    std::size_t bytes_;
  };

  // nullopt when `n` more bytes would exceed the limit.
  std::optional<Reservation> try_reserve(std::size_t n) {
    std::size_t used = used_.load(std::memory_order_relaxed);
    do {
      if (n > limit_ - used) return std::nullopt;
    } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
    gauge_.add(static_cast<double>(n));
    return Reservation(*this, n);
  }

 private:
  void release(std::size_t n) {
    used_.fetch_sub(n, std::memory_order_relaxed);
    gauge_.add(-static_cast<double>(n));
  }

  const std::size_t limit_;
  metrics::Gauge& gauge_;
  std::atomic<std::size_t> used_{0};
};

// A deadline that cancels the pending read on a stream but leaves the socket open, so the server can
// still answer 408. (tcp_stream's own expiry closes the socket, which leaves nothing to answer on.)
// Lives on the connection's strand; the handler checks `armed` so a firing that races the read's
// completion cannot cancel a later operation or touch a destroyed stream.
class ReadDeadline {
 public:
  ReadDeadline(beast::tcp_stream& stream, Clock::duration after)
      : timer_(stream.get_executor()), armed_(std::make_shared<bool>(true)), fired_(std::make_shared<bool>(false)) {
    stream.expires_never();
    timer_.expires_after(after);
    timer_.async_wait([armed = armed_, fired = fired_, &stream](const boost::system::error_code& ec) {
      if (ec || !*armed) return;
      *fired = true;
      boost::system::error_code ignored;
      stream.socket().cancel(ignored);
    });
  }
  ~ReadDeadline() {
    *armed_ = false;
    timer_.cancel();
  }
  ReadDeadline(const ReadDeadline&) = delete;
  ReadDeadline& operator=(const ReadDeadline&) = delete;
  bool expired() const noexcept { return *fired_; }

 private:
  asio::steady_timer timer_;
  std::shared_ptr<bool> armed_;
  std::shared_ptr<bool> fired_;
};

class Server {
 public:
  Server(const config::Config& cfg, metrics::Registry& registry, Readiness& readiness, db::Pool& pool,
         usage::Pipeline& usage)
      : cfg_(cfg),
        body_budget_(cfg.max_buffered_body_bytes, registry),
        ioc_(static_cast<int>(cfg.threads)),
        acceptor_(asio::make_strand(ioc_)),
        signals_(ioc_, SIGINT, SIGTERM),
        metrics_(registry),
        readiness_(readiness),
        usage_(usage),
        redis_(ioc_, cfg, registry),
        db_(pool, cfg.db_acquire_timeout),
        auth_(cfg, redis_, db_, registry, [this] { return revocations_.live(); }),
        revocations_(
            ioc_, cfg, registry, auth::invalidation_channel(cfg.redis_prefix),
            [this](std::string_view digest) { auth_.invalidate(digest); },
            [this] { auth_.invalidate_all(); }),
        sessions_(cfg, redis_, db_, registry),
        upstream_(ioc_, cfg, registry),
        limiter_(ioc_, cfg, redis_, registry),
        admin_(cfg, pool, registry),
        chat_(cfg, sessions_, upstream_, limiter_, usage, registry) {
    pool.declare_purpose("auth");
    pool.declare_purpose("session");
  }

  int run() {
    const auto address = asio::ip::make_address(cfg_.listen.host);
    const tcp::endpoint endpoint{address, cfg_.listen.port};
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
    readiness_.set_listening(true);
    log::info("listening", {{"address", cfg_.listen.host},
                            {"port", acceptor_.local_endpoint().port()},
                            {"threads", cfg_.threads},
                            {"version", LAGOON_VERSION}});

    redis_.start();
    revocations_.start();
    limiter_.start();
    notify_service_manager("READY=1\nSTATUS=accepting requests");
    wait_for_signal();
    asio::co_spawn(acceptor_.get_executor(), accept_loop(), [](std::exception_ptr e) {
      if (e) log::error("accept loop ended by an exception");
    });

    std::vector<std::thread> threads;
    for (unsigned i = 1; i < cfg_.threads; ++i) threads.emplace_back([this] {
      util::name_this_thread("lagoon-reactor");
      ioc_.run();
    });
    ioc_.run();
    for (auto& t : threads) t.join();
    // No reactor thread runs any more: dependencies can be torn down without racing their strands.
    admin_.shutdown();
    limiter_.shutdown();
    revocations_.shutdown();
    redis_.shutdown();
    db_.shutdown();
    readiness_.set_listening(false);
    log::info("stopped", {{"connections_left", active_.load()}});
    return 0;
  }

 private:
  void wait_for_signal() {
    signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      if (readiness_.draining()) {
        log::warn("second signal: stopping without waiting", {{"signal", signo}});
        ioc_.stop();
        return;
      }
      begin_drain(signo);
      wait_for_signal();
    });
  }

  void begin_drain(int signo) {
    readiness_.set_draining();
    notify_service_manager("STOPPING=1\nSTATUS=draining");
    log::info("draining", {{"signal", signo},
                           {"connections", active_.load()},
                           {"drain_timeout_ms", cfg_.drain_timeout.count()}});
    asio::post(acceptor_.get_executor(), [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
    });
    std::lock_guard lock(connections_mutex_);
    for (const auto& entry : connections_)
      asio::post(entry->executor, [entry] {
        if (entry->stream && entry->idle) entry->stream->close();
      });
    asio::co_spawn(ioc_, finish_drain(), asio::detached);
  }

  // A member, not a lambda: GCC 12 mishandles coroutine lambdas' by-value parameters.
  awaitable<void> wait_for_connections(Clock::time_point until) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    while (active_.load() > 0 && Clock::now() < until) {
      timer.expires_after(std::chrono::milliseconds(10));
      co_await timer.async_wait(as_result);
    }
  }

  awaitable<void> finish_drain() {
    co_await wait_for_connections(Clock::now() + cfg_.drain_timeout);
    if (active_.load() > 0) {
      // Streams still open get a final error event rather than a cut connection, whole answers a 503.
      log::warn("drain deadline passed; ending what is left", {{"connections", active_.load()}});
      chat_.cut_all();
      co_await wait_for_connections(Clock::now() + kCutGrace);
      if (active_.load() > 0) log::warn("closing connections", {{"connections", active_.load()}});
    }
    co_await limiter_.flush();  // token corrections not yet sent
    ioc_.stop();
  }

  awaitable<void> accept_loop() {
    asio::steady_timer backoff(acceptor_.get_executor());
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::make_strand(ioc_), as_result);
      if (!acceptor_.is_open()) co_return;
      if (ec) {
        // EMFILE/ENFILE and friends: back off briefly instead of spinning on a full descriptor table.
        log::warn("accept failed", {{"error", ec.message()}});
        backoff.expires_after(std::chrono::milliseconds(50));
        co_await backoff.async_wait(as_result);
        continue;
      }
      if (active_.load() >= static_cast<int>(cfg_.max_connections)) {
        metrics_.connections_rejected.inc();
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      auto entry = std::make_shared<ConnectionEntry>(socket.get_executor());
      {
        std::lock_guard lock(connections_mutex_);
        connections_.insert(entry);
      }
      active_.fetch_add(1);
      metrics_.connections_total.inc();
      metrics_.connections_active.add(1);
      const std::uint64_t id = ++connection_counter_;
      asio::co_spawn(entry->executor, serve_connection(std::move(socket), entry),
                     [this, entry, id](std::exception_ptr e) {
                       if (e) {
                         try {
                           std::rethrow_exception(e);
                         } catch (const std::exception& ex) {
                           log::error("connection failed", {{"connection", id}, {"error", ex.what()}});
                         }
                       }
                       {
                         std::lock_guard lock(connections_mutex_);
                         connections_.erase(entry);
                       }
                       metrics_.connections_active.add(-1);
                       active_.fetch_sub(1);
                     });
    }
  }

  // Reads and discards what the client still sends after we decided to close, so the kernel does not
  // answer unread data with a RST that destroys our error response before the client reads it
  // (the "lingering close" of nginx and Apache).
  static awaitable<void> lingering_close(beast::tcp_stream& stream) {
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.expires_after(std::chrono::seconds(1));
    char sink[16384];
    std::size_t discarded = 0;
    while (!ec && discarded < (1u << 20)) {
      auto [rec, n] = co_await stream.async_read_some(asio::buffer(sink), as_result);
      ec = rec;
      discarded += n;
    }
    stream.close();
  }

  // async_read_header through http::HeaderReader (its header says why by hand). `problem` says why when
  // the result is bad_value from our own framing checks.
  awaitable<boost::system::error_code> read_header(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                                   bhttp::request_parser<bhttp::empty_body>& parser,
                                                   std::string_view& problem) {
    http::HeaderReader reader(parser, cfg_.max_header_bytes);
    for (;;) {
      auto step = reader.step(buffer);
      if (step == http::HeaderReader::Step::need_more) {
        auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), as_result);
        if (ec == asio::error::eof) step = reader.end_of_input(buffer);
        else if (ec) co_return ec;
        else buffer.commit(n);
      }
      if (step == http::HeaderReader::Step::done) co_return boost::system::error_code{};
      if (step == http::HeaderReader::Step::failed) {
        problem = reader.problem();
        co_return reader.error();
      }
    }
  }

  // Routes answered only for a Bearer key (the admin API has a token of its own).
  static bool needs_key(const http::RouteMatch& m) {
    return m.kind == http::RouteMatch::Kind::found &&
           (m.route == http::Route::chat_completions || m.route == http::Route::models ||
            m.route == http::Route::key_info);
  }

  // Answers a request refused from its head alone. A body the client may still send is never read: the
  // connection closes after the answer, lingering so that the answer is not lost to a reset. Returns
  // whether the connection may carry another request.
  awaitable<bool> refuse_before_body(beast::tcp_stream& stream, Response& res, bool keep_alive, bool body_pending,
                                     Clock::time_point started, std::string_view route, std::string_view method,
                                     std::string_view path, const std::string& request_id,
                                     const RequestFacts* facts = nullptr) {
    keep_alive = keep_alive && !body_pending && !readiness_.draining();
    res.keep_alive(keep_alive);
    const auto written = co_await write(stream, res);
    finish(started, route, method, path, res.result_int(), request_id, 0, written.value_or(0), facts);
    if (!written) co_return false;
    if (keep_alive) co_return true;
    if (body_pending) {
      co_await lingering_close(stream);
    } else {
      boost::system::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
    co_return false;
  }

  // Writes a response under the write deadline; returns the bytes written, or nullopt on failure.
  awaitable<std::optional<std::size_t>> write(beast::tcp_stream& stream, Response& res) {
    stream.expires_after(cfg_.write_timeout);
    auto [ec, n] = co_await bhttp::async_write(stream, res, as_result);
    if (ec) co_return std::nullopt;
    co_return n;
  }

  // Answers a request that cannot be read to the end, then closes the connection.
  awaitable<void> reject(beast::tcp_stream& stream, http::ErrorKind kind, std::string_view message,
                         Clock::time_point started, std::string_view method = {}, std::string_view path = {}) {
    const std::string request_id = http::new_request_id();
    Response res = error_response(kind, message, request_id);
    res.keep_alive(false);
    const auto written = co_await write(stream, res);
    finish(started, "unmatched", method, path, res.result_int(), request_id, 0, written.value_or(0));
    co_await lingering_close(stream);
  }

  void finish(Clock::time_point started, std::string_view route, std::string_view method, std::string_view path,
              unsigned status, const std::string& request_id, std::size_t bytes_in, std::size_t bytes_out,
              const RequestFacts* facts = nullptr) {
    const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    const std::string_view outcome =
        facts && !facts->outcome.empty() ? std::string_view(facts->outcome) : outcome_of_status(status);
    metrics_.request(route, status, outcome, seconds);
    if (!log::enabled(log::Level::info)) return;
    nlohmann::json line{{"request_id", request_id},
                        {"method", method},
                        {"path", path},
                        {"status", status},
                        {"outcome", outcome},
                        {"duration_ms", seconds * 1000.0},
                        {"bytes_in", bytes_in},
                        {"bytes_out", bytes_out}};
    if (facts && facts->user_id != 0) {
      line["key_prefix"] = keys::log_prefix(facts->key_prefix);
      line["user_id"] = facts->user_id;
    }
    if (facts && !facts->model.empty()) {
      line["model"] = facts->model;
      line["stream"] = facts->stream;
    }
    if (facts && facts->total_tokens) line["tokens"] = *facts->total_tokens;
    if (facts && facts->ttfb_ms) line["ttfb_ms"] = *facts->ttfb_ms;
    if (facts && facts->upstream_status) line["upstream_status"] = facts->upstream_status;
    if (facts && !facts->auth_denied.empty()) line["auth_denied"] = facts->auth_denied;
    log::info("access", std::move(line));
  }

  // `authenticated`: the key, for a route that needs one (see needs_key).
  awaitable<Response> handle(const Request& req, const http::RouteMatch& match,
                             const std::optional<auth::AuthResult>& authenticated, const std::string& request_id,
                             const std::string& client_request_id, RequestFacts& facts) {
    if (match.kind == http::RouteMatch::Kind::found && match.route == http::Route::key_info) {
      const auto& k = authenticated->key();
      facts.key_prefix = k.prefix;
      facts.user_id = k.user_id;
      // An authenticated request: it gets its usage row like any other.
      auto record = ChatHandler::first_record(k, request_id, request_id == client_request_id);
      record.status_code = 200;
      record.outcome = "ok";
      usage_.push(record);
      auto nullable = [](const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
      const nlohmann::json body{{"data",
                                 {{"id", k.key_id},
                                  {"prefix", k.prefix},
                                  {"name", nullable(k.name)},
                                  {"user_id", k.user_id},
                                  {"rpm_limit", nullable(k.rpm_limit)},
                                  {"tpm_limit", nullable(k.tpm_limit)}}}};
      co_return make_response(200, body.dump(), "application/json", request_id);
    }
    if (match.kind == http::RouteMatch::Kind::found && match.route == http::Route::admin) {
      if (admin_.enabled() && req.count(bhttp::field::authorization) > 1)
        co_return error_response(http::ErrorKind::bad_request, "More than one Authorization header", request_id);
      const auto a = co_await admin_.handle(req.method_string(), req.target(), req[bhttp::field::authorization],
                                            req.body());
      Response res = make_response(a.status, a.body, "application/json", request_id);
      if (a.retry_after) res.set(bhttp::field::retry_after, *a.retry_after);
      if (!a.allow.empty()) res.set(bhttp::field::allow, a.allow);
      if (a.www_authenticate) res.set(bhttp::field::www_authenticate, "Bearer");
      co_return res;
    }
    co_return handle_plain(req, match, request_id);
  }

  Response handle_plain(const Request& req, const http::RouteMatch& match, const std::string& request_id) {
    switch (match.kind) {
      case http::RouteMatch::Kind::not_found:
        return error_response(http::ErrorKind::not_found,
                              "Unknown request URL: " + std::string(req.method_string()) + " " +
                                  std::string(http::path_of(req.target())),
                              request_id);
      case http::RouteMatch::Kind::method_not_allowed: {
        ErrorExtras extras;
        extras.allow = match.allow;
        return error_response(http::ErrorKind::method_not_allowed,
                              "Method " + std::string(req.method_string()) + " is not allowed here", request_id, true,
                              extras);
      }
      case http::RouteMatch::Kind::found: break;
    }
    switch (match.route) {
      case http::Route::healthz:
        return make_response(200, R"({"status":"ok"})", "application/json", request_id);
      case http::Route::readyz: {
        const auto s = readiness_.snapshot();
        if (s.ready())
          return make_response(200, R"({"status":"ready","redis":"ok","postgres":"ok"})",
                               "application/json", request_id);
        std::string why = s.draining ? "draining" : !s.listening ? "listener not ready" : !s.probed ? "starting" : "";
        if (why.empty()) {
          if (!s.redis) why += "redis unavailable";
          if (!s.postgres) why += std::string(why.empty() ? "" : ", ") + "postgres unavailable";
        }
        return error_response(http::ErrorKind::service_unavailable, "not ready: " + why, request_id);
      }
      case http::Route::metrics:
        return make_response(200, metrics_.registry.render(), "text/plain; version=0.0.4; charset=utf-8",
                             request_id);
      case http::Route::key_info:
      case http::Route::chat_completions:
      case http::Route::models:
      case http::Route::admin: break;  // handled by handle() / chat_
    }
    return error_response(http::ErrorKind::internal_error, "unhandled route", request_id);
  }

  awaitable<void> serve_connection(tcp::socket socket, std::shared_ptr<ConnectionEntry> entry) {
    beast::tcp_stream stream(std::move(socket));
    entry->stream = &stream;
    struct Detach {  // the drain must not see a dangling stream once this frame is gone
      ConnectionEntry& e;
      ~Detach() { e.stream = nullptr; }
    } detach{*entry};

    beast::flat_buffer buffer;
    bool first = true;
    const auto accepted_at = Clock::now();
    for (;;) {
      // Wait for the first byte of the next request. A new connection gets the header deadline (it has
      // promised a request); a kept-alive one may sit idle for idle_timeout.
      entry->idle = true;
      if (readiness_.draining() && !first) co_return;
      if (buffer.size() == 0) {
        stream.expires_after(first ? cfg_.header_timeout : cfg_.idle_timeout);
        auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), as_result);
        if (ec) co_return;  // closed, reset, idle timeout or drain: nothing was asked, nothing to answer
        // The drain may have closed this idle connection after its bytes arrived but before this
        // coroutine resumed: the request must not be served (its answer could not be written).
        if (!stream.socket().is_open()) co_return;
        buffer.commit(n);
      }
      entry->idle = false;
      const auto started = Clock::now();
      // A new connection's header deadline runs from accept, so a slow first byte cannot double it.
      const auto header_due = (first ? accepted_at : started) + cfg_.header_timeout;
      first = false;

      bhttp::request_parser<bhttp::empty_body> header_parser;
      header_parser.header_limit(static_cast<std::uint32_t>(cfg_.max_header_bytes));
      header_parser.body_limit(cfg_.max_body_bytes);
      auto header_deadline = std::make_unique<ReadDeadline>(stream, header_due - Clock::now());
      std::string_view framing_problem;
      const auto hec = co_await read_header(stream, buffer, header_parser, framing_problem);
      const bool header_late = header_deadline->expired();
      header_deadline.reset();
      if (header_late) {
        co_await reject(stream, http::ErrorKind::request_timeout, "Request header not received in time", started);
        co_return;
      }
      if (hec == bhttp::error::header_limit) {
        // Beast parses the request line as soon as it is complete; if it never was, the line itself is
        // what overflowed.
        if (header_parser.get().target().empty() ||
            http::request_line_too_long(header_parser.get().method_string(), header_parser.get().target(),
                                        cfg_.max_request_line_bytes))
          co_await reject(stream, http::ErrorKind::uri_too_long, "Request line too long", started);
        else
          co_await reject(stream, http::ErrorKind::headers_too_large, "Request header fields too large", started);
        co_return;
      }
      if (hec == bhttp::error::body_limit) {
        co_await reject(stream, http::ErrorKind::payload_too_large,
                        "Request body larger than " + std::to_string(cfg_.max_body_bytes) + " bytes", started);
        co_return;
      }
      if (hec == bhttp::error::end_of_stream || hec == asio::error::eof || hec == asio::error::connection_reset ||
          hec == asio::error::operation_aborted)
        co_return;
      if (hec) {
        const std::string why = framing_problem.empty() ? hec.message() : std::string(framing_problem);
        co_await reject(stream, http::ErrorKind::bad_request, "Malformed HTTP request: " + why, started);
        co_return;
      }
      const auto& head = header_parser.get();
      framing_problem = http::field_problem(
          {head.version(), head.count(bhttp::field::host), head.count(bhttp::field::content_length),
           head[bhttp::field::content_length], head.count(bhttp::field::transfer_encoding),
           head[bhttp::field::transfer_encoding]});
      if (!framing_problem.empty()) {
        co_await reject(stream, http::ErrorKind::bad_request, "Malformed HTTP request: " + std::string(framing_problem),
                        started);
        co_return;
      }
      const std::string method(head.method_string());
      const std::string path(http::path_of(head.target()));
      if (http::request_line_too_long(head.method_string(), head.target(), cfg_.max_request_line_bytes)) {
        co_await reject(stream, http::ErrorKind::uri_too_long, "Request line too long", started, method, path);
        co_return;
      }
      const std::string head_request_id(head["X-Request-Id"]);
      const std::string request_id = http::choose_request_id(head_request_id);
      const auto match = http::match_route(head.method_string(), head.target());
      const bool body_pending = !header_parser.is_done();

      // A route that needs a Bearer key checks it from the head, before the body is read or 100 Continue
      // sent: a client without a valid key cannot make the gateway wait for its body, or hold it.
      std::optional<auth::AuthResult> authenticated;
      if (needs_key(match)) {
        std::optional<Response> refusal;
        RequestFacts refused;
        if (head.count(bhttp::field::authorization) > 1) {
          refusal = error_response(http::ErrorKind::bad_request, "More than one Authorization header", request_id);
        } else {
          auto a = co_await auth_.authenticate(head[bhttp::field::authorization]);
          // Why, for the operator's log only: the answer and /metrics never tell a key's holder.
          refused.auth_denied = std::string(a.reason);
          if (a.ok()) authenticated = std::move(a);
          else refusal = auth_failure_response(a, request_id, true);
        }
        if (refusal) {
          if (!co_await refuse_before_body(stream, *refusal, head.keep_alive(), body_pending, started, match.label,
                                           method, path, request_id, &refused))
            co_return;
          continue;
        }
      }
      // The body's memory, all of it, is reserved before its first byte is read.
      auto body_reservation =
          body_pending
              ? body_budget_.try_reserve(header_parser.content_length().value_or(cfg_.max_body_bytes))
              : std::optional<BodyBudget::Reservation>{};
      if (body_pending && !body_reservation) {
        metrics_.bodies_refused.inc();
        Response res = error_response(http::ErrorKind::service_unavailable,
                                      "The gateway is receiving too many request bodies at once. Please retry shortly.",
                                      request_id);
        co_await refuse_before_body(stream, res, false, true, started, match.label, method, path, request_id);
        co_return;
      }

      bhttp::request_parser<bhttp::string_body> parser(std::move(header_parser));
      parser.body_limit(cfg_.max_body_bytes);
      if (!parser.is_done()) {
        if (beast::iequals(parser.get()[bhttp::field::expect], "100-continue")) {
          bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, 11};
          stream.expires_after(cfg_.write_timeout);
          auto [cec, cn] = co_await bhttp::async_write(stream, cont, as_result);
          if (cec) co_return;
        }
        auto body_deadline = std::make_unique<ReadDeadline>(stream, cfg_.body_timeout);
        auto [bec, bn] = co_await bhttp::async_read(stream, buffer, parser, as_result);
        const bool body_late = body_deadline->expired();
        body_deadline.reset();
        if (body_late) {
          co_await reject(stream, http::ErrorKind::request_timeout, "Request body not received in time", started,
                          method, path);
          co_return;
        }
        if (bec == bhttp::error::body_limit) {
          co_await reject(stream, http::ErrorKind::payload_too_large,
                          "Request body larger than " + std::to_string(cfg_.max_body_bytes) + " bytes", started,
                          method, path);
          co_return;
        }
        if (bec == bhttp::error::end_of_stream || bec == asio::error::eof || bec == asio::error::connection_reset)
          co_return;
        if (bec) {
          co_await reject(stream, http::ErrorKind::bad_request, "Malformed HTTP request body: " + bec.message(),
                          started, method, path);
          co_return;
        }
      }
      Request req = parser.release();
      if (match.kind == http::RouteMatch::Kind::found &&
          (match.route == http::Route::chat_completions || match.route == http::Route::models)) {
        const bool keep_alive = req.keep_alive() && !readiness_.draining();
        const bool client_id = request_id == head_request_id;
        // if/else, not ?: — GCC 12 miscompiles co_await inside a conditional expression.
        ChatResult r;
        if (match.route == http::Route::models)
          r = co_await chat_.serve_models(stream, *authenticated, request_id, client_id, keep_alive);
        else
          r = co_await chat_.serve(stream, req, *authenticated, request_id, client_id, keep_alive);
        finish(started, match.label, method, path, r.status, request_id, req.body().size(), r.bytes_out, &r.facts);
        if (!r.keep_alive) {
          boost::system::error_code ignored;
          stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
          co_return;
        }
        continue;
      }
      RequestFacts facts;
      Response res = co_await handle(req, match, authenticated, request_id, head_request_id, facts);
      const bool keep_alive = req.keep_alive() && !readiness_.draining();
      res.keep_alive(keep_alive);
      const auto written = co_await write(stream, res);
      finish(started, match.label, method, path, res.result_int(), request_id, req.body().size(),
             written.value_or(0), &facts);
      if (!written) co_return;
      if (!keep_alive) {
        boost::system::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
        co_return;
      }
    }
  }

  const config::Config& cfg_;
  BodyBudget body_budget_;  // before ioc_: see BodyBudget
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::signal_set signals_;
  ServerMetrics metrics_;
  Readiness& readiness_;
  usage::Pipeline& usage_;
  redis::Client redis_;
  db::AsyncPool db_;
  auth::Authenticator auth_;
  redis::Subscriber revocations_;
  session::SessionStore sessions_;
  upstream::Client upstream_;
  ratelimit::Limiter limiter_;
  admin::Api admin_;
  ChatHandler chat_;
  std::mutex connections_mutex_;
  std::unordered_set<std::shared_ptr<ConnectionEntry>> connections_;
  std::atomic<int> active_{0};
  std::atomic<std::uint64_t> connection_counter_{0};
};

}  // namespace

constexpr std::chrono::milliseconds kFinalUsageFlush{5000};

int run(const config::Config& cfg) {
  log::init(cfg.log_level);
  metrics::Registry registry;
  registry.gauge("lagoon_build_info", "Always 1; the version is in the label", {{"version", LAGOON_VERSION}}).set(1);
  int code = 0;
  {
    db::Pool pool(cfg, registry);
    std::optional<usage::Pipeline> usage;
    try {
      usage.emplace(cfg, pool, registry);
    } catch (const std::exception& e) {
      log::error("cannot open the usage queue", {{"error", e.what()}, {"hint", "set LAGOON_USAGE_DIR"}});
      log::shutdown();
      return 1;
    }
    usage->start();
    Readiness readiness(cfg, pool, registry);
    readiness.start();
    try {
      Server server(cfg, registry, readiness, pool, *usage);
      code = server.run();
    } catch (const boost::system::system_error& e) {
      log::error("cannot listen", {{"address", cfg.listen.host}, {"port", cfg.listen.port}, {"error", e.what()}});
      code = 1;
    } catch (const std::exception& e) {
      log::error("cannot start", {{"error", e.what()}});
      code = 1;
    }
    readiness.stop();
    // Requests are over: write what they left queued; what Postgres cannot take in time goes to the
    // journal (and the queue file keeps anything else for the next start).
    usage->stop(kFinalUsageFlush);
  }
  log::shutdown();
  return code;
}

}  // namespace lagoon::server
