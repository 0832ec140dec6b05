// AsyncPool: how reactor code uses Postgres. `co_await run(purpose, fn)` runs fn(pqxx::connection&) on a
// dedicated blocking thread with a lease from the Pool and resumes the caller on its own executor with
// a Result: fn's value, or Unavailable saying why (no connection in time, a lost connection, or any
// exception fn threw) — a value the caller answers with 503, never an exception on the request path. The lease is taken and given back inside that one call on
// the blocking thread, so a reactor coroutine can never hold a connection across another await.
//
// The acquire deadline runs from the moment of the call, so time spent queued behind other blocking
// work counts against it: under a storm a request gets db::Unavailable (503) in db_acquire_timeout,
// not after the queue drains. There are exactly db_pool_size blocking threads; more could only wait.
//
// Thread-safety: run() may be called from any thread. shutdown() joins the threads; the destructor
// calls it.
#pragma once

#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include <boost/asio/append.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/result.hpp>

#include "lagoon/db/pool.hpp"

namespace lagoon::db {

template <class R>
using Result = boost::system::result<R, Unavailable>;

// For Result::value() on a failure: a programming error, callers check first.
[[noreturn]] inline void throw_exception_from_error(const Unavailable& e, const boost::source_location&) { throw e; }

class AsyncPool {
 public:
  AsyncPool(Pool& pool, std::chrono::milliseconds acquire_timeout)
      : pool_(pool), acquire_timeout_(acquire_timeout), threads_(pool.size()) {}
  ~AsyncPool() { shutdown(); }
  AsyncPool(const AsyncPool&) = delete;
  AsyncPool& operator=(const AsyncPool&) = delete;

  void shutdown() noexcept {
    threads_.stop();
    threads_.join();
  }

  template <class F>
  boost::asio::awaitable<Result<std::invoke_result_t<F&, pqxx::connection&>>> run(std::string purpose, F fn) {
    using R = std::invoke_result_t<F&, pqxx::connection&>;
    static_assert(!std::is_void_v<R>, "return a value from the function run on the lease");
    // GCC 12 copies some coroutine by-value parameters bitwise (aggregates, and lambdas that own a
    // string or a container, which are then freed twice): capture by reference — the caller's frame
    // waits for the call — or pass a named type with a constructor (session/store.cpp).
    namespace asio = boost::asio;
    const auto deadline = Pool::Clock::now() + acquire_timeout_;
    auto [error, value] = co_await asio::async_initiate<decltype(asio::use_awaitable),
                                                void(std::optional<Unavailable>, std::optional<R>)>(
        [this, &purpose, &fn, deadline](auto handler) {
          asio::post(threads_, [this, purpose = std::move(purpose), fn = std::move(fn), deadline,
                                handler = std::move(handler)]() mutable {
            std::optional<Unavailable> error;
            std::optional<R> value;
            try {
              value.emplace(pool_.with_lease(purpose, fn, deadline));
            } catch (const Unavailable& e) {
              error.emplace(e);
            } catch (const std::exception& e) {
              error.emplace(e.what());
            } catch (...) {
              error.emplace("unknown error");
            }
            asio::dispatch(asio::append(std::move(handler), std::move(error), std::move(value)));
          });
        },
        asio::use_awaitable);
    if (error) co_return Result<R>(boost::system::in_place_error, std::move(*error));
    co_return Result<R>(boost::system::in_place_value, std::move(*value));
  }

 private:
  Pool& pool_;
  const std::chrono::milliseconds acquire_timeout_;
  boost::asio::thread_pool threads_;
};

}  // namespace lagoon::db
