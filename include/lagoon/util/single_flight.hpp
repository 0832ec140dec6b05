// SingleFlight: concurrent requests for the same key share one lookup. The first caller runs `fetch`;
// the others wait (without blocking a thread) and receive the same result on their own executors.
// Value must be copyable and is what fetch returns; fetch must not throw.
// Thread-safety: run() from any number of coroutines on any threads.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace lagoon::util {

template <class Value>
class SingleFlight {
 public:
  // `coalesced` is set to whether this caller waited for another's fetch.
  template <class Fetch>
  boost::asio::awaitable<Value> run(const std::string& key, Fetch fetch, bool& coalesced) {
    std::shared_ptr<Flight> flight;
    {
      std::lock_guard lock(mutex_);
      auto [it, inserted] = flights_.try_emplace(key);
      if (inserted) it->second = std::make_shared<Flight>();
      flight = it->second;
      coalesced = !inserted;
    }
    if (coalesced) co_return co_await flight->wait();
    Value result = co_await fetch();
    {
      std::lock_guard lock(mutex_);
      flights_.erase(key);
    }
    flight->finish(result);
    co_return result;
  }

 private:
  struct Flight {
    std::mutex mutex;
    bool done = false;
    Value result{};
    std::vector<boost::asio::any_completion_handler<void(Value)>> waiters;

    void finish(const Value& r) {
      std::vector<boost::asio::any_completion_handler<void(Value)>> ready;
      {
        std::lock_guard lock(mutex);
        done = true;
        result = r;
        ready.swap(waiters);
      }
      // Each waiter resumes on its own executor (any_completion_executor cannot be posted to in
      // Boost 1.81; dispatch goes through the waiter's strand, which is not this one).
      for (auto& h : ready) boost::asio::dispatch(boost::asio::append(std::move(h), r));
    }

    boost::asio::awaitable<Value> wait() {
      co_return co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void(Value)>(
          [this](auto handler) {
            std::unique_lock lock(mutex);
            if (!done) {
              waiters.emplace_back(std::move(handler));
              return;
            }
            Value r = result;
            lock.unlock();
            boost::asio::dispatch(boost::asio::append(std::move(handler), std::move(r)));
          },
          boost::asio::use_awaitable);
    }
  };

  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
};

}  // namespace lagoon::util
