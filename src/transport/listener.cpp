#include "lagoon/transport/listener.hpp"

#include <atomic>
#include <mutex>
#include <unordered_set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "connection.hpp"
#include "lagoon/log/log.hpp"

namespace lagoon::transport {

namespace asio = boost::asio;
using asio::awaitable;
using tcp = asio::ip::tcp;

namespace {

// What an exception that ended a coroutine says, whatever it was.
std::string what_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "an exception of unknown type";
  }
}

}  // namespace

// Handlers capture the Impl by pointer: they run only while the reactor runs, and the Listener is
// destroyed after the reactor stopped (pending handlers are then destroyed, never invoked).
struct Listener::Impl {
  Impl(std::vector<asio::io_context*> rs, const config::Config& c, config::HostPort at, metrics::Registry& r,
       app::Readiness& rd, auth::Authenticator& auth, routes::Router& router, Impl* main)
      : reactors(std::move(rs)),
        cfg(c),
        endpoint(std::move(at)),
        essential(main == nullptr),
        readiness(rd),
        acceptor(*reactors.front()),
        shared{c,
               rd,
               auth,
               router,
               RequestLog(r),
               r.counter("lagoon_http_bodies_refused_total",
                         "Requests answered 503 because max_buffered_body_bytes was reached"),
               main ? main->shared.body_budget : std::make_shared<BodyBudget>(c.max_buffered_body_bytes, r)},
        open(main ? main->open : std::make_shared<std::atomic<int>>(0)),
        connections_active(r.gauge("lagoon_http_connections_active", "Client connections open now")),
        connections_total(r.counter("lagoon_http_connections_total", "Client connections accepted")),
        connections_rejected(r.counter("lagoon_http_connections_rejected_total",
                                       "Client connections closed at once because max_connections was reached")) {}

  awaitable<void> accept_loop() {
    asio::steady_timer backoff(acceptor.get_executor());
    for (;;) {
      // Round robin: connections of equal weight spread evenly, and the socket is registered with its
      // reactor's own epoll set from the start.
      asio::io_context& reactor = *reactors[next_reactor++ % reactors.size()];
      auto [ec, socket] = co_await acceptor.async_accept(reactor, asio::as_tuple(asio::use_awaitable));
      if (!acceptor.is_open()) co_return;
      if (ec) {
        // EMFILE/ENFILE and friends: back off briefly instead of spinning on a full descriptor table.
        log::warn("accept failed", {{"error", ec.message()}});
        backoff.expires_after(std::chrono::milliseconds(50));
        co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
        continue;
      }
      if (open->load() >= static_cast<int>(cfg.max_connections)) {
        connections_rejected.inc();
        boost::system::error_code ignored;
        socket.close(ignored);
        continue;
      }
      spawn_connection(std::move(socket));
    }
  }

  void spawn_connection(tcp::socket socket) {
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto entry = std::make_shared<ConnectionEntry>(socket.get_executor());
    {
      std::lock_guard lock(mutex);
      connections.insert(entry);
    }
    active.fetch_add(1);
    open->fetch_add(1);
    connections_total.inc();
    connections_active.add(1);
    const std::uint64_t id = ++counter;
    asio::co_spawn(entry->executor, serve_connection(shared, std::move(socket), entry, shared.body_budget),
                   [self = this, entry, id](std::exception_ptr e) {
                     if (e) log::error("connection failed", {{"connection", id}, {"error", what_of(e)}});
                     {
                       std::lock_guard lock(self->mutex);
                       self->connections.erase(entry);
                     }
                     self->connections_active.add(-1);
                     self->open->fetch_sub(1);
                     self->active.fetch_sub(1);
                   });
  }

  const std::vector<asio::io_context*> reactors;
  std::size_t next_reactor = 0;  // touched by the accept loop alone
  const config::Config& cfg;
  const config::HostPort endpoint;
  const bool essential;  // the main listener: a dead accept loop makes the instance not ready
  app::Readiness& readiness;
  tcp::acceptor acceptor;
  ConnectionShared shared;
  // Connections open on this listener and the ones that share its limit: max_connections and
  // max_buffered_body_bytes hold for the process, not per listener.
  std::shared_ptr<std::atomic<int>> open;
  metrics::Gauge& connections_active;
  metrics::Counter& connections_total;
  metrics::Counter& connections_rejected;
  std::mutex mutex;
  std::unordered_set<std::shared_ptr<ConnectionEntry>> connections;
  std::atomic<int> active{0};
  std::atomic<std::uint64_t> counter{0};
};

Listener::Listener(std::vector<asio::io_context*> reactors, const config::Config& cfg, config::HostPort endpoint,
                   metrics::Registry& registry, app::Readiness& readiness, auth::Authenticator& auth,
                   routes::Router& router, Listener* main)
    : impl_(std::make_unique<Impl>(std::move(reactors), cfg, std::move(endpoint), registry, readiness, auth, router,
                                   main ? main->impl_.get() : nullptr)) {}

Listener::~Listener() = default;

void Listener::open() {
  auto& a = impl_->acceptor;
  const tcp::endpoint endpoint{asio::ip::make_address(impl_->endpoint.host), impl_->endpoint.port};
  a.open(endpoint.protocol());
  a.set_option(asio::socket_base::reuse_address(true));
  a.bind(endpoint);
  a.listen(asio::socket_base::max_listen_connections);
}

unsigned short Listener::port() const { return impl_->acceptor.local_endpoint().port(); }

void Listener::start() {
  asio::co_spawn(impl_->acceptor.get_executor(), impl_->accept_loop(), [impl = impl_.get()](std::exception_ptr e) {
    if (!e) return;
    // Nothing new can be served: say so where the load balancer looks, and why where the operator does.
    // (The console's listener is not what the load balancer sends clients to: only logged.)
    if (impl->essential) impl->readiness.set_accept_failed();
    log::error("the accept loop ended: no new connections are accepted", {{"error", what_of(e)}});
  });
}

void Listener::begin_drain() {
  Impl* impl = impl_.get();
  asio::post(impl->acceptor.get_executor(), [impl] {
    boost::system::error_code ignored;
    impl->acceptor.close(ignored);
  });
  std::lock_guard lock(impl->mutex);
  for (const auto& entry : impl->connections)
    asio::post(entry->executor, [entry] {
      if (entry->stream && entry->idle) entry->stream->close();
    });
}

int Listener::active() const noexcept { return impl_->active.load(); }

}  // namespace lagoon::transport
