// Hand-written fakes for the request path's seams — one each: upstream::Sender (with scripted
// Exchanges), session::SessionSource, ratelimit::Gate, usage::Sink, relay::Downstream, auth::KeySource —
// and run_awaitable(), which runs a coroutine to its end on a private io_context. With them the whole
// chat flow runs in a unit test: no sockets, no servers. Single-threaded, like the tests.
#pragma once

#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>

#include "lagoon/auth/authenticator.hpp"
#include "lagoon/auth/key_source.hpp"
#include "lagoon/ratelimit/limiter.hpp"
#include "lagoon/relay/downstream.hpp"
#include "lagoon/relay/relay.hpp"
#include "lagoon/session/store.hpp"
#include "lagoon/upstream/exchange.hpp"
#include "lagoon/usage/sink.hpp"

namespace lagoon::fakes {

template <class T>
T run_awaitable(boost::asio::io_context& ioc, boost::asio::awaitable<T> a) {
  std::promise<T> promise;
  auto future = promise.get_future();
  boost::asio::co_spawn(ioc, std::move(a), [&promise](std::exception_ptr e, T value) {
    if (e) promise.set_exception(e);
    else promise.set_value(std::move(value));
  });
  ioc.restart();
  ioc.run();
  return future.get();
}

// What the transport hands a route for an authenticated, active key.
inline auth::AuthResult authenticated(std::int64_t key_id, std::int64_t user_id, std::string prefix) {
  auth::CacheEntry e;
  e.record.key_id = key_id;
  e.record.user_id = user_id;
  e.record.prefix = std::move(prefix);
  e.record.key_active = e.record.user_active = true;
  auth::AuthResult a;
  a.outcome = auth::AuthResult::Outcome::ok;
  a.entry = std::make_shared<const auth::CacheEntry>(e);
  return a;
}

class FakeDownstream;

// One scripted step of an upstream answer's body.
struct Piece {
  std::string bytes;                              // what read_some yields (empty: the body is complete)
  std::optional<upstream::Failure::Kind> failure;  // instead: the read fails
  std::function<void()> before;                   // runs first (e.g. the client resets meanwhile)
};

inline Piece bytes(std::string b) { return Piece{std::move(b), std::nullopt, nullptr}; }
inline Piece end_of_body() { return Piece{}; }
inline Piece fails(upstream::Failure::Kind k) { return Piece{{}, k, nullptr}; }

class FakeExchange final : public upstream::Exchange {
 public:
  FakeExchange(upstream::Head head, std::deque<Piece> pieces, std::shared_ptr<bool> aborted)
      : head_(std::move(head)), pieces_(std::move(pieces)), aborted_(std::move(aborted)) {}
  const upstream::Head& head() const noexcept override { return head_; }
  boost::asio::awaitable<upstream::Result<std::string_view>> read_some() override {
    if (*aborted_) co_return upstream::Failure{upstream::Failure::Kind::broken, "aborted"};
    if (pieces_.empty()) co_return std::string_view{};
    current_ = std::move(pieces_.front());
    pieces_.pop_front();
    if (current_.before) current_.before();
    if (*aborted_) co_return upstream::Failure{upstream::Failure::Kind::broken, "aborted"};
    if (current_.failure) co_return upstream::Failure{*current_.failure, "scripted failure"};
    co_return std::string_view(current_.bytes);
  }
  void abort() noexcept override { *aborted_ = true; }

 private:
  upstream::Head head_;
  std::deque<Piece> pieces_;
  Piece current_;
  std::shared_ptr<bool> aborted_;  // shared with the sender: the route frees the exchange
};

// What one send() gets: a failure, or an answer.
struct Scripted {
  std::optional<upstream::Failure::Kind> failure;
  upstream::Head head;
  std::deque<Piece> pieces;
};

inline Scripted answer(unsigned status, std::string body, std::string content_type = "application/json",
                       std::optional<std::string> retry_after = std::nullopt) {
  Scripted s;
  s.head = {status, std::move(content_type), std::move(retry_after), {}};
  s.pieces = {bytes(std::move(body)), end_of_body()};
  return s;
}
inline Scripted stream(std::deque<Piece> pieces) {
  Scripted s;
  s.head = {200, "text/event-stream", std::nullopt, {}};
  s.pieces = std::move(pieces);
  return s;
}
inline Scripted send_fails(upstream::Failure::Kind k) {
  Scripted s;
  s.failure = k;
  return s;
}

class FakeSender final : public upstream::Sender {
 public:
  std::deque<Scripted> script;
  std::vector<std::string> sent;  // "METHOD path body"
  http::Headers last_headers;     // the client's headers sent with the last request
  std::shared_ptr<bool> last_aborted = std::make_shared<bool>(false);  // whether the last exchange was aborted

  boost::asio::awaitable<upstream::Result<std::unique_ptr<upstream::Exchange>>> send(std::string_view method,
                                                                                    std::string_view path,
                                                                                    std::string_view body,
                                                                                    const http::Headers& headers) override {
    sent.push_back(std::string(method) + " " + std::string(path) + " " + std::string(body));
    last_headers = headers;
    if (script.empty()) co_return upstream::Failure{upstream::Failure::Kind::connect, "no script left"};
    Scripted s = std::move(script.front());
    script.pop_front();
    if (s.failure) co_return upstream::Failure{*s.failure, "scripted failure"};
    last_aborted = std::make_shared<bool>(false);
    auto ex = std::make_unique<FakeExchange>(std::move(s.head), std::move(s.pieces), last_aborted);
    co_return std::unique_ptr<upstream::Exchange>(std::move(ex));
  }
};

class FakeSessions final : public session::SessionSource {
 public:
  bool available = true;
  int asked = 0;
  std::string last_model;
  boost::asio::awaitable<std::optional<db::Session>> session_for(const auth::KeyRecord&,
                                                                 const std::string& model) override {
    ++asked;
    last_model = model;
    if (!available) co_return std::nullopt;
    co_return db::Session{"00000000-0000-4000-8000-000000000001", model, 4102444800000};
  }
};

class FakeGate final : public ratelimit::Gate {
 public:
  ratelimit::Decision decision;  // what admit() answers (default: unlimited)
  std::vector<std::int64_t> settled;
  std::vector<std::optional<std::int64_t>> estimates;  // what each admit() was asked
  std::vector<std::optional<money::Pico>> holds;       // … and the most each may cost
  std::vector<std::optional<money::Pico>> costs;       // what each settle() was told it cost
  std::optional<std::vector<ratelimit::BudgetState>> budget_states = std::vector<ratelimit::BudgetState>{};
  boost::asio::awaitable<ratelimit::Decision> admit(const auth::KeyRecord&, std::optional<std::int64_t> estimate,
                                                    std::optional<money::Pico> most) override {
    estimates.push_back(estimate);
    holds.push_back(most);
    auto d = decision;
    d.tokens_requested = estimate.value_or(0);
    if (!estimate) d.tokens.reset();
    co_return d;
  }
  void settle(const auth::KeyRecord&, const ratelimit::Decision&, std::int64_t actual,
              std::optional<money::Pico> cost) override {
    settled.push_back(actual);
    costs.push_back(cost);
  }
  boost::asio::awaitable<std::optional<std::vector<ratelimit::BudgetState>>> budgets(const auth::KeyRecord&) override {
    co_return budget_states;
  }
};

class FakeSink final : public usage::Sink {
 public:
  int opened = 0;
  std::vector<usage::Record> pushed;
  usage::InFlight::Entry open(const usage::Record&) noexcept override {
    ++opened;
    return {};
  }
  bool push(const usage::Record& r, usage::InFlight::Entry&) noexcept override {
    pushed.push_back(r);
    return true;
  }
};

// Records what the route wrote. `fail_at`: the n-th write (0-based: the reply or stream head is 0)
// fails, as to a client that went away.
class FakeDownstream final : public relay::Downstream {
 public:
  std::optional<int> fail_at;
  std::optional<http::Reply> reply;
  std::optional<http::Reply> head;
  std::vector<std::string> chunks;
  bool ended = false;
  std::function<void()> on_reset;
  int writes = 0;

  boost::asio::awaitable<bool> send(http::Reply& r) override {
    if (fails()) co_return false;
    reply = r;
    co_return true;
  }
  boost::asio::awaitable<bool> start_stream(const http::Reply& h) override {
    if (fails()) co_return false;
    head = h;
    co_return true;
  }
  boost::asio::awaitable<bool> send_chunk(std::string_view b) override {
    if (fails()) co_return false;
    chunks.emplace_back(b);
    co_return true;
  }
  boost::asio::awaitable<bool> end_stream() override {
    if (fails()) co_return false;
    ended = true;
    co_return true;
  }
  void watch_reset(std::function<void()> f) override { on_reset = std::move(f); }
  void stop_watching() noexcept override { on_reset = nullptr; }
  // The client resets its connection now (only noticed while a stream is watched).
  void reset() {
    if (on_reset) on_reset();
  }
  std::string streamed() const {
    std::string all;
    for (const auto& c : chunks) all += c;
    return all;
  }

 private:
  bool fails() { return fail_at && writes++ == *fail_at; }
};

class FakeKeySource final : public auth::KeySource {
 public:
  std::map<keys::Digest, auth::CacheEntry> keys;  // absent: unknown
  bool available = true;
  int fetched = 0;
  std::function<void()> during;  // runs inside a fetch (e.g. an invalidation racing it)
  boost::asio::awaitable<std::shared_ptr<const auth::CacheEntry>> fetch(const keys::Digest& d) override {
    ++fetched;
    // Suspends like a real lookup, so concurrent callers can meet in the authenticator.
    co_await boost::asio::post(co_await boost::asio::this_coro::executor, boost::asio::use_awaitable);
    if (during) during();
    if (!available) co_return nullptr;
    auto it = keys.find(d);
    auth::CacheEntry e;
    if (it == keys.end()) {
      e.unknown = true;
      e.record.digest = d;
    } else {
      e = it->second;
    }
    co_return std::make_shared<const auth::CacheEntry>(std::move(e));
  }
};

// What a relaying route's tests stand on: the request path's fakes, and the Relay's dependencies over
// them. A fixture derives from it beside ::testing::Test.
struct RelayFakes {
  config::Config cfg_;
  metrics::Registry registry_;
  money::PriceBook prices_;
  FakeSender upstream_;
  FakeSessions sessions_;
  FakeGate gate_;
  FakeSink sink_;
  relay::Cuts cuts_;
  relay::RelayDeps relay_deps(std::chrono::milliseconds retry_delay = std::chrono::milliseconds(0)) {
    return relay::RelayDeps{cfg_, upstream_, sessions_, gate_, sink_, cuts_, registry_, prices_, retry_delay};
  }
};

}  // namespace lagoon::fakes
