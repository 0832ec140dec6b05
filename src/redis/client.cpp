// Client: the command connections, the breaker in front of them, and the accounting every finished
// command goes through. The connections themselves are in connection.cpp.
#include "lagoon/redis/client.hpp"

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "lagoon/config/url.hpp"
#include "lagoon/log/log.hpp"
#include "connection.hpp"

namespace lagoon::redis {

namespace asio = boost::asio;

void Client::Shared::account(const Result& r, bool collateral) {
  const auto now = Clock::now();
  switch (r.status) {
    case Status::ok:
      if (!r.reply.is_error() || is_request_error(r.reply.str)) {
        (r.reply.is_error() ? error : ok).inc();
        if (breaker.success(now)) {
          breaker_open.set(0);
          log::info("redis breaker closed");
        }
        return;
      }
      // READONLY (a replica after failover), OOM, LOADING, MASTERDOWN…: Redis answered but cannot
      // serve; counting that as success would keep the limits failing open forever behind it.
      error.inc();
      if (!logged_error_reply.exchange(true))
        log::warn("redis answers with errors", {{"reply", r.reply.str.substr(0, 120)}});
      break;
    case Status::timeout: timeout_count.inc(); break;
    case Status::unavailable: unavailable.inc(); break;
    case Status::skipped: skipped.inc(); return;
  }
  if (collateral) return;
  if (breaker.failure(now)) {
    breaker_open.set(1);
    breaker_opened.inc();
    log::warn("redis breaker opened: skipping Redis", {{"cooldown_ms", breaker_cooldown_ms()}});
  }
}

Client::Client(asio::io_context& ioc, const config::Config& cfg, metrics::Registry& metrics,
               std::shared_ptr<Locator> locator)
    : locator_(locator ? std::move(locator) : std::make_shared<Locator>(cfg, &metrics)),
      shared_(std::make_shared<Shared>(cfg, metrics)) {
  for (unsigned i = 0; i < cfg.redis_connections; ++i)
    connections_.push_back(std::make_shared<Connection>(ioc, locator_, Connection::Mode::command, shared_,
                                                        ConnectionMetrics(metrics, "command")));
  follow_primary(*locator_, connections_);
}

Client::~Client() { shutdown(); }

void Client::start() {
  locator_->start();
  for (auto& c : connections_) c->start();
}

void Client::shutdown() noexcept {
  locator_->stop();  // no more moves posted to the strands
  for (auto& c : connections_) c->shutdown();
}

bool Client::breaker_open() const { return shared_->breaker.state() != Breaker::State::closed; }

std::shared_ptr<Connection> Client::pick() {
  const std::size_t n = connections_.size();
  const std::size_t start = next_.fetch_add(1, std::memory_order_relaxed);
  for (std::size_t i = 0; i < n; ++i) {
    auto& c = connections_[(start + i) % n];
    if (c->up()) return c;
  }
  return connections_[start % n];  // none up: it answers "unavailable" on its strand
}

asio::awaitable<Result> Client::evalsha(std::vector<std::string> args, const std::string& script) {
  auto result = co_await command(args);
  if (result.status == Status::ok && result.reply.is_error() && result.reply.str.rfind("NOSCRIPT", 0) == 0) {
    args[0] = "EVAL";
    args[1] = script;
    result = co_await command(std::move(args));
  }
  co_return result;
}

asio::awaitable<Result> Client::command(std::vector<std::string> args) {
  if (!shared_->breaker.allow(Clock::now())) {
    shared_->account(Result{Status::skipped, {}}, false);
    co_return Result{Status::skipped, {}};
  }
  auto conn = pick();
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Result)>(
      [&conn, &args](auto handler) {
        auto op = std::make_shared<Op>(std::move(handler), std::move(args));
        asio::post(conn->strand(), [conn, op] { conn->issue(op); });
      },
      asio::use_awaitable);
}

void Client::send(std::vector<std::string> args) {
  if (!shared_->breaker.allow(Clock::now())) {
    shared_->account(Result{Status::skipped, {}}, false);
    return;
  }
  auto conn = pick();
  auto op = std::make_shared<Op>(
      asio::any_completion_handler<void(Result)>(asio::bind_executor(conn->strand(), [](Result) {})), std::move(args));
  asio::post(conn->strand(), [conn, op] { conn->issue(op); });
}

}  // namespace lagoon::redis
