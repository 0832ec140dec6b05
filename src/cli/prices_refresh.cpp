// `lagoon prices refresh` (commands.hpp): the gateway's upstream client on an io_context of its own, for
// one request, then the same judgement and storage as the running gateway's refresher.
#include <iostream>
#include <memory>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "commands.hpp"
#include "lagoon/db/prices.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/money/book.hpp"
#include "lagoon/relay/whole.hpp"
#include "lagoon/upstream/client.hpp"

namespace lagoon::cli {
namespace {

namespace asio = boost::asio;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

// An operator waits at the terminal: the whole answer within a minute (Venice sends its list in a second
// or two), the head within half of it — not the two minutes a chat's first token may take.
constexpr std::chrono::seconds kRefreshDeadline{60};
constexpr std::chrono::milliseconds kFirstByteDeadline{30'000};

struct Fetched {
  std::optional<std::string> body;
  std::string problem;  // why there is none
};

asio::awaitable<void> fetch(upstream::Sender& upstream, Clock::time_point deadline, Fetched& out) {
  static const http::Headers kNone;
  auto sent = co_await upstream.send("GET", "/models?type=all", "", kNone);
  if (!sent) {
    out.problem = sent.error().what;
    co_return;
  }
  // The client bounds each read by its gap deadline; this bounds the whole body, however slowly it comes.
  // The timer's handler may run after this frame is gone: it owns what it touches.
  std::shared_ptr<upstream::Exchange> exchange = std::move(*sent);
  auto done = std::make_shared<bool>(false);
  asio::steady_timer watchdog(co_await asio::this_coro::executor);
  watchdog.expires_at(deadline);
  watchdog.async_wait([exchange, done](boost::system::error_code ec) {
    if (!ec && !*done) exchange->abort();
  });
  std::string body;
  const auto broke = co_await relay::read_whole(*exchange, body);
  *done = true;
  watchdog.cancel();
  if (broke) out.problem = Clock::now() >= deadline
                                         ? "no whole answer within " + std::to_string(kRefreshDeadline.count()) + " s"
                                         : broke->what;
  else if (exchange->head().status != 200) out.problem = "Venice answered " + std::to_string(exchange->head().status);
  else out.body = std::move(body);
}

Fetched fetch_model_list(const config::Config& cfg) {
  config::Config c = cfg;
  c.upstream_first_byte_timeout = std::min(c.upstream_first_byte_timeout, kFirstByteDeadline);
  asio::io_context ioc;
  metrics::Registry metrics;
  upstream::Client client(c, metrics);
  Fetched out;
  asio::co_spawn(ioc, fetch(client, Clock::now() + kRefreshDeadline, out), [&out](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      out.problem = ex.what();
    }
  });
  ioc.run();  // nothing outlives the one request: idle upstream connections wait for nothing
  return out;
}

json result_json(money::RefreshResult r, const std::optional<db::StoredTable>& table,
                 std::optional<std::size_t> fetched_models) {
  return {{"result", money::refresh_result_name(r)},
          {"version", table ? json(table->version) : json(nullptr)},
          {"models", table ? table->prices.size() : 0},
          {"fetched_models", fetched_models ? json(*fetched_models) : json(nullptr)}};
}

// Prints what was found and why nothing was stored; exit code 1.
int refused(money::RefreshResult r, const std::optional<db::StoredTable>& table,
            std::optional<std::size_t> fetched_models, const std::string& why) {
  print(result_json(r, table, fetched_models));
  std::cerr << "lagoon: " << why << "; nothing was stored, the prices in force stay.\n";
  return 1;
}

}  // namespace

int refresh_prices(const Command& cmd, const config::Config& cfg, pqxx::connection& conn) {
  if (cfg.upstream_api_key.empty())
    throw config::ConfigError("LAGOON_UPSTREAM_API_KEY", "required to fetch Venice's prices (or VENICE_API_KEY)");
  const Fetched fetched = fetch_model_list(cfg);
  auto table = db::latest_prices(conn);
  if (!fetched.body)
    return refused(money::RefreshResult::failed, table, std::nullopt,
                   "Venice's model list could not be fetched (" + fetched.problem + ")");
  const db::PriceMap none;
  auto judged = money::judge_model_list(*fetched.body, table ? table->prices : none);
  const std::size_t fetched_models = judged.prices.size();
  if (judged.result == money::RefreshResult::malformed)
    return refused(judged.result, table, fetched_models, "Venice's model list has no readable prices");
  if (judged.result == money::RefreshResult::shrunk)
    return refused(judged.result, table, fetched_models,
                   "Venice's model list lost more than a fifth of the " + std::to_string(table->prices.size()) +
                       " models priced now");
  admin::Outcome outcome;
  if (judged.result == money::RefreshResult::stored) {
    db::store_prices(conn, judged.prices);
    table = db::latest_prices(conn);
    outcome.prices_changed = true;
    outcome.change = "Venice's prices are stored";
  }
  outcome.body = result_json(judged.result, table, fetched_models);
  return report(cmd, cfg, outcome);
}

}  // namespace lagoon::cli
