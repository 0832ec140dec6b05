#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <mutex>

#include "lagoon/auth/key_record.hpp"
#include "lagoon/log/log.hpp"
#include "lagoon/money/book.hpp"
#include "lagoon/relay/whole.hpp"

namespace lagoon::money {

namespace asio = boost::asio;
using asio::awaitable;

namespace {
// After a refresh that did not store a table, the next try comes sooner than the interval.
constexpr std::chrono::seconds kRetryAfterFailure{60};

const char* const kRefreshHelp = "Refreshes of Venice's price table by how they ended";
}  // namespace

std::string prices_channel(std::string_view prefix) { return auth::invalidation_channel(prefix); }

std::string_view refresh_result_name(RefreshResult r) noexcept {
  switch (r) {
    case RefreshResult::stored: return "stored";
    case RefreshResult::unchanged: return "unchanged";
    case RefreshResult::failed: return "failed";
    case RefreshResult::malformed: return "malformed";
    case RefreshResult::shrunk: return "shrunk";
    case RefreshResult::not_stored: return "not_stored";
  }
  return "";
}

Refreshed judge_model_list(std::string_view body, const db::PriceMap& current) {
  Refreshed out;
  auto parsed = parse_model_list(body);
  // A list without a single price is no price table, whatever the reason.
  if (!parsed || parsed->empty()) {
    out.result = RefreshResult::malformed;
    return out;
  }
  out.result = shrank_too_much(current, *parsed) ? RefreshResult::shrunk
               : *parsed == current                 ? RefreshResult::unchanged
                                                    : RefreshResult::stored;
  out.prices = std::move(*parsed);
  return out;
}

struct PriceRefresher::State {
  explicit State(asio::io_context& ioc) : timer(ioc) {}
  asio::steady_timer timer;
  std::atomic<bool> stopped{false};
  std::mutex installing;  // a reload and a refresh may finish at once, on two reactor threads
};

PriceRefresher::PriceRefresher(asio::io_context& ioc, const config::Config& cfg, upstream::Sender& upstream,
                               db::AsyncPool& db, PriceBook& book, metrics::Registry& metrics)
    : ioc_(ioc),
      cfg_(cfg),
      upstream_(upstream),
      db_(db),
      book_(book),
      metrics_(metrics),
      models_(metrics.gauge("lagoon_price_table_models", "Models with a price from Venice in the table in force")),
      version_(metrics.gauge("lagoon_price_table_version", "Version (price_tables row) of the table in force; 0: none")),
      fetched_at_(metrics.gauge("lagoon_price_table_refreshed_timestamp_seconds",
                                "When Venice's prices were last fetched and found good (Unix time)")),
      state_(std::make_shared<State>(ioc)) {
  for (auto r : {RefreshResult::stored, RefreshResult::unchanged, RefreshResult::failed, RefreshResult::malformed,
                 RefreshResult::shrunk, RefreshResult::not_stored})
    metrics.counter("lagoon_price_refreshes_total", kRefreshHelp, {{"result", std::string(refresh_result_name(r))}});
}

PriceRefresher::~PriceRefresher() { shutdown(); }

void PriceRefresher::start() { asio::co_spawn(ioc_, loop(), asio::detached); }

void PriceRefresher::shutdown() noexcept {
  state_->stopped = true;
  state_->timer.cancel();
}

void PriceRefresher::reload_soon() {
  if (state_->stopped) return;
  asio::co_spawn(ioc_, reload(), asio::detached);
}

void PriceRefresher::note(RefreshResult r) {
  metrics_.counter("lagoon_price_refreshes_total", kRefreshHelp, {{"result", std::string(refresh_result_name(r))}})
      .inc();
}

awaitable<void> PriceRefresher::loop() {
  co_await reload();
  while (!state_->stopped) {
    const RefreshResult r = co_await refresh();
    const bool good = r == RefreshResult::stored || r == RefreshResult::unchanged;
    state_->timer.expires_after(good ? cfg_.price_refresh_interval
                                     : std::min<std::chrono::milliseconds>(cfg_.price_refresh_interval,
                                                                           kRetryAfterFailure));
    co_await state_->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

awaitable<bool> PriceRefresher::reload() {
  auto loaded = co_await db_.run("load prices", [](pqxx::connection& c) { return db::load_price_table(c); });
  if (!loaded) {
    log::warn("prices could not be loaded from Postgres; the table in force stays",
              {{"reason", loaded.error().what()}});
    co_return false;
  }
  install(std::move(*loaded));
  co_return true;
}

void PriceRefresher::install(PriceTable table) {
  std::lock_guard lock(state_->installing);
  const auto current = book_.snapshot();
  // A load that began before a refresh stored a newer table must not put the older one back; nor may
  // an empty store replace a table fetched while Postgres was away (version 0). Overrides are as loaded.
  if (table.version < current->version || (table.version == 0 && table.upstream.empty())) {
    table.upstream = current->upstream;
    table.version = current->version;
  }
  models_.set(static_cast<double>(table.upstream.size()));
  version_.set(static_cast<double>(table.version));
  book_.install(std::move(table));
}

awaitable<RefreshResult> PriceRefresher::refresh() {
  static const http::Headers kNone;
  auto sent = co_await upstream_.send("GET", "/models?type=all", "", kNone);
  std::string body;
  std::optional<upstream::Failure> broke;
  if (!sent) broke = sent.error();
  else broke = co_await relay::read_whole(**sent, body);
  if (broke || (*sent)->head().status != 200) {
    log::warn("Venice's prices could not be fetched; the table in force stays",
              {{"reason", broke ? broke->what : "status " + std::to_string((*sent)->head().status)}});
    note(RefreshResult::failed);
    co_return RefreshResult::failed;
  }
  const auto current = book_.snapshot();
  Refreshed judged = judge_model_list(body, current->upstream);
  if (judged.result == RefreshResult::malformed || judged.result == RefreshResult::shrunk) {
    log::warn(judged.result == RefreshResult::shrunk
                  ? "Venice's price table lost more than a fifth of its models; refused, the table in force stays"
                  : "Venice's model list has no readable prices; refused, the table in force stays",
              {{"models_in_force", current->upstream.size()}});
    note(judged.result);
    co_return judged.result;
  }
  const std::int64_t now_s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  fetched_at_.set(static_cast<double>(now_s));
  // By reference: this frame waits for the call. (A lambda holding the map by value, passed by value
  // into AsyncPool::run's coroutine, is freed twice by GCC 12.)
  const db::PriceMap& prices = judged.prices;
  auto stored = co_await db_.run("store prices", [&prices](pqxx::connection& c) {
    db::store_prices(c, prices);
    return db::load_price_table(c);
  });
  if (!stored) {
    // Still better than the old table in this process; stored by the next refresh that reaches Postgres.
    log::warn("Venice's prices could not be stored; used unversioned until they are", {{"reason", stored.error().what()}});
    PriceTable table = *current;
    table.upstream = std::move(judged.prices);
    table.version = 0;
    {
      std::lock_guard lock(state_->installing);
      models_.set(static_cast<double>(table.upstream.size()));
      version_.set(0);
      book_.install(std::move(table));
    }
    note(RefreshResult::not_stored);
    co_return RefreshResult::not_stored;
  }
  install(std::move(*stored));
  note(judged.result);
  co_return judged.result;
}

}  // namespace lagoon::money
