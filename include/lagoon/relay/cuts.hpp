// Cuts: the drain's reach into requests that are reading from the upstream. Each such request holds a
// Registration while it reads; cut_all() (the drain deadline has passed) aborts every one of their
// exchanges on its own executor, and any that registers later is cut at once — so a stream ends with a
// final error event and a whole answer with 503, rather than a cut connection.
// Thread-safety: cut_all() from any thread; a Registration lives in one request's coroutine and is
// touched only on its executor. Registrations may outlive the Cuts (coroutine frames still suspended
// at shutdown are destroyed with the io_context).
#pragma once

#include <memory>
#include <mutex>
#include <unordered_set>

#include <boost/asio/any_io_executor.hpp>

#include "lagoon/upstream/exchange.hpp"

namespace lagoon::relay {

class Cuts {
  struct Entry {
    boost::asio::any_io_executor executor;
    upstream::Exchange* exchange = nullptr;
    bool cut = false;
  };
  struct Shared {
    std::mutex mutex;
    std::unordered_set<std::shared_ptr<Entry>> entries;
    bool cutting = false;
  };

 public:
  class Registration {
   public:
    Registration(Cuts& cuts, boost::asio::any_io_executor executor, upstream::Exchange& exchange);
    ~Registration();
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    // Whether the drain cut this request's exchange.
    bool cut() const noexcept { return entry_->cut; }

   private:
    std::shared_ptr<Shared> shared_;
    std::shared_ptr<Entry> entry_;
  };

  void cut_all();

 private:
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
};

}  // namespace lagoon::relay
