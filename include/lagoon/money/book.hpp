// PriceBook: the price table every request is costed with, swapped whole when a newer one is loaded —
// a request takes one snapshot at admission and uses it to its end, so its reservation and its cost
// come from the same prices. PriceRefresher keeps it current: at start and on every price change
// announced on Redis (`lagoon prices set|refresh`, the admin API) it loads the stored table and the
// overrides from Postgres; every price_refresh_interval it fetches Venice's model list, refuses one that
// is malformed or lost more than a fifth of the models (kMaxShrink: log, metric, the old table stays),
// and stores a good one so that a restart or a failed refresh never leaves the gateway without prices.
// Thread-safety: PriceBook is safe from any thread. PriceRefresher: start()/shutdown() from the thread
// that owns the io_context; refresh() and reload() are coroutines on it.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "lagoon/config/config.hpp"
#include "lagoon/db/async_pool.hpp"
#include "lagoon/db/prices.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/money/price.hpp"
#include "lagoon/upstream/exchange.hpp"

namespace boost::asio {
class io_context;
}

namespace lagoon::money {

class PriceBook {
 public:
  PriceBook() : table_(std::make_shared<const PriceTable>()) {}
  std::shared_ptr<const PriceTable> snapshot() const { return table_.load(std::memory_order_acquire); }
  void install(PriceTable table) {
    table_.store(std::make_shared<const PriceTable>(std::move(table)), std::memory_order_release);
  }

 private:
  std::atomic<std::shared_ptr<const PriceTable>> table_;
};

// A price change is announced on the channel of key invalidations (auth/key_record.hpp), whose
// subscription every instance keeps anyway, with this payload (no digest looks like it).
std::string prices_channel(std::string_view prefix);
inline constexpr std::string_view kPricesChanged = "prices";

// How one refresh from Venice ended, as the `result` label of lagoon_price_refreshes_total.
enum class RefreshResult { stored, unchanged, failed, malformed, shrunk, not_stored };
std::string_view refresh_result_name(RefreshResult r) noexcept;

// Venice's model list against the table in force: what a refresh would store, or why it must not.
struct Refreshed {
  RefreshResult result = RefreshResult::failed;
  db::PriceMap prices;  // the list's prices as read (empty when malformed): what is stored when good
};
Refreshed judge_model_list(std::string_view body, const db::PriceMap& current);

class PriceRefresher {
 public:
  PriceRefresher(boost::asio::io_context& ioc, const config::Config& cfg, upstream::Sender& upstream,
                 db::AsyncPool& db, PriceBook& book, metrics::Registry& metrics);
  ~PriceRefresher();
  PriceRefresher(const PriceRefresher&) = delete;
  PriceRefresher& operator=(const PriceRefresher&) = delete;

  // Loads from Postgres, then refreshes from Venice every price_refresh_interval.
  void start();
  void shutdown() noexcept;
  // Ask for a reload from Postgres soon (a price change was announced); safe from any thread.
  void reload_soon();

  boost::asio::awaitable<RefreshResult> refresh();
  boost::asio::awaitable<bool> reload();

 private:
  boost::asio::awaitable<void> loop();
  void note(RefreshResult r);
  // Puts a loaded table in force unless the one in force is newer (then only its overrides are taken).
  void install(PriceTable table);

  boost::asio::io_context& ioc_;
  const config::Config& cfg_;
  upstream::Sender& upstream_;
  db::AsyncPool& db_;
  PriceBook& book_;
  metrics::Registry& metrics_;
  metrics::Gauge& models_;
  metrics::Gauge& version_;
  metrics::Gauge& fetched_at_;
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace lagoon::money
