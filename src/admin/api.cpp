#include "lagoon/admin/api.hpp"

#include <boost/asio/append.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pqxx/pqxx>

#include "lagoon/admin/operations.hpp"
#include "lagoon/log/log.hpp"

namespace lagoon::admin {
namespace {

namespace asio = boost::asio;
using nlohmann::json;

// Admin calls wait in line behind each other on their own threads; a usage report over a big range
// may take a while, so their wait for a connection is longer than a request's.
constexpr std::chrono::milliseconds kAdminAcquireTimeout{5000};

Outcome execute(pqxx::connection& conn, const config::Config& cfg, const Call& c) {
  switch (c.op) {
    case Call::Op::create_user: return admin::create_user(conn, c.user_ref, c.user_policy);
    case Call::Op::get_user: return admin::get_user(conn, c.user_ref);
    case Call::Op::deactivate_user: return admin::deactivate_user(conn, c.user_ref);
    case Call::Op::update_user: return admin::update_user(conn, c.user_ref, c.user_changes);
    case Call::Op::create_key: return admin::create_key(conn, cfg.key_pepper, c.user_ref, c.key_options);
    case Call::Op::list_keys: return admin::list_keys(conn, c.user_ref);
    case Call::Op::get_key: return admin::get_key(conn, c.key_id);
    case Call::Op::update_key: return admin::update_key(conn, c.key_id, c.key_changes);
    case Call::Op::revoke_key: return admin::revoke_key(conn, c.key_id);
    case Call::Op::rotate_key: return admin::rotate_key(conn, cfg.key_pepper, c.key_id, c.grace_seconds);
    case Call::Op::usage: return admin::usage(conn, c.usage);
    case Call::Op::list_prices: return admin::list_prices(conn);
    case Call::Op::set_price: return admin::set_price(conn, c.model, c.price);
    case Call::Op::delete_price: return admin::delete_price(conn, c.model);
    case Call::Op::list_users: return admin::list_users(conn, c.users);
    case Call::Op::find_keys: return admin::find_keys(conn, c.keys);
    case Call::Op::usage_series: return admin::usage_series(conn, c.series);
    case Call::Op::metrics: break;  // answered without Postgres (Api::handle)
  }
  throw std::logic_error("unknown admin operation");
}

Answer error_answer(http::ErrorKind kind, std::string_view message,
                    const std::optional<std::string>& param = std::nullopt) {
  Answer a;
  a.status = http::spec(kind).status;
  a.body = http::error_body(kind, message,
                            param ? std::optional<std::string_view>(*param) : std::optional<std::string_view>());
  if (kind == http::ErrorKind::service_unavailable) a.retry_after = "1";
  if (kind == http::ErrorKind::invalid_api_key) a.www_authenticate = true;
  return a;
}

// Runs one call on the calling (admin) thread: the lease is given back before Redis is told.
Answer run_call(const config::Config& cfg, db::Pool& pool, const Call& call) {
  try {
    Outcome o = pool.with_lease(
        "admin", [&](pqxx::connection& conn) { return execute(conn, cfg, call); },
        db::Pool::Clock::now() + kAdminAcquireTimeout);
    try {
      invalidate(cfg, o);
    } catch (const InvalidationFailed& e) {
      if (o.repeatable) throw;
      // The answer shows a key once: it is given, with what the instances were not told.
      log::error("admin change not propagated", {{"error", e.what()}});
      o.body["warning"] = e.what();
    }
    Answer a;
    a.status = call.success_status;
    if (call.csv) {
      a.body = series_csv(o.body);
      a.content_type = "text/csv; charset=utf-8";
    } else {
      a.body = o.body.dump(-1, ' ', false, json::error_handler_t::replace);
    }
    return a;
  } catch (const db::AccountsError& e) {
    switch (e.kind()) {
      case db::AccountsError::Kind::not_found: return error_answer(http::ErrorKind::not_found, e.what());
      case db::AccountsError::Kind::conflict: return error_answer(http::ErrorKind::conflict, e.what());
      case db::AccountsError::Kind::invalid: break;
    }
    return error_answer(http::ErrorKind::invalid_request, e.what(), e.param());
  } catch (const db::Unavailable& e) {
    return error_answer(http::ErrorKind::service_unavailable, "Postgres is unavailable. Please retry shortly.");
  } catch (const InvalidationFailed& e) {
    log::error("admin change not propagated", {{"error", e.what()}});
    return error_answer(http::ErrorKind::service_unavailable,
                        std::string(e.what()) + " Repeat this call once Redis is reachable.");
  } catch (const pqxx::broken_connection&) {
    return error_answer(http::ErrorKind::service_unavailable, "Postgres is unavailable. Please retry shortly.");
  } catch (const std::exception& e) {
    log::error("admin call failed", {{"error", e.what()}});
    return error_answer(http::ErrorKind::internal_error, "The admin operation failed.");
  }
}

}  // namespace

bool admin_token_matches(const std::string& configured, std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return false;
  for (std::size_t i = 0; i < kScheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return false;
  std::string_view given = authorization.substr(kScheme.size());
  while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
  while (!given.empty() && given.back() == ' ') given.remove_suffix(1);
  // Digests of both, so the comparison takes the same time whatever the lengths.
  unsigned char a[32], b[32];
  unsigned int la = 0, lb = 0;
  EVP_Digest(configured.data(), configured.size(), a, &la, EVP_sha256(), nullptr);
  EVP_Digest(given.data(), given.size(), b, &lb, EVP_sha256(), nullptr);
  return CRYPTO_memcmp(a, b, sizeof a) == 0;
}

struct Api::Threads {
  explicit Threads(std::size_t n) : pool(n) {}
  asio::thread_pool pool;
};

Api::Api(const config::Config& cfg, db::Pool& pool, metrics::Registry& metrics)
    : cfg_(cfg),
      pool_(pool),
      registry_(metrics),
      threads_(std::make_unique<Threads>(std::min<std::size_t>(cfg.admin_db_connections, pool.size()))),
      unauthorized_(metrics.counter("lagoon_admin_unauthorized_total", "Admin API calls refused for a wrong token")) {
  pool.declare_purpose("admin");
}

Api::~Api() { shutdown(); }

void Api::shutdown() noexcept {
  threads_->pool.stop();
  threads_->pool.join();
}

boost::asio::awaitable<Answer> Api::handle(std::string_view method, std::string_view target,
                                           std::string_view authorization, std::string_view body) {
  if (!cfg_.admin_token) co_return error_answer(http::ErrorKind::not_found, "Unknown request URL");
  if (!admin_token_matches(*cfg_.admin_token, authorization)) {
    unauthorized_.inc();
    co_return error_answer(http::ErrorKind::invalid_api_key, "Missing or incorrect admin token.");
  }
  auto parsed = parse_call(method, target, body);
  if (auto* e = std::get_if<ApiError>(&parsed)) {
    Answer a = error_answer(e->kind, e->message, e->param);
    a.allow = e->allow;
    co_return a;
  }
  const Call& call = std::get<Call>(parsed);
  if (call.op == Call::Op::metrics) {
    Answer a;
    a.body = registry_.render();
    a.content_type = "text/plain; version=0.0.4; charset=utf-8";
    co_return a;
  }
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Answer)>(
      [this, &call](auto handler) {
        asio::post(threads_->pool, [this, &call, handler = std::move(handler)]() mutable {
          Answer a = run_call(cfg_, pool_, call);
          asio::dispatch(asio::append(std::move(handler), std::move(a)));
        });
      },
      asio::use_awaitable);
}

}  // namespace lagoon::admin
