#include "lagoon/session/store.hpp"

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "lagoon/db/async_pool.hpp"
#include "lagoon/log/log.hpp"
#include "lagoon/redis/client.hpp"

namespace lagoon::session {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {
// Another instance may replace a key's session (a request for another model); trusting our copy
// longer would count usage against a session that is no longer active.
constexpr auto kL1Age = std::chrono::seconds(5);
// A session this close to its end is replaced rather than used.
constexpr std::int64_t kMarginMs = 1000;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The lease function, as a named type with a constructor: GCC 12 copies an aggregate coroutine
// argument bitwise into the frame, leaving a std::string member pointing at the old buffer.
class SessionFor {
 public:
  SessionFor(std::int64_t key_id, std::int64_t user_id, std::string model, std::chrono::milliseconds ttl)
      : key_id_(key_id), user_id_(user_id), model_(std::move(model)), ttl_(ttl) {}
  db::Session operator()(pqxx::connection& c) const { return db::session_for(c, key_id_, user_id_, model_, ttl_); }

 private:
  std::int64_t key_id_, user_id_;
  std::string model_;
  std::chrono::milliseconds ttl_;
};
}  // namespace

std::string SessionStore::redis_key(std::int64_t key_id) const {
  return cfg_.redis_prefix + "session:" + std::to_string(key_id);
}

SessionStore::SessionStore(const config::Config& cfg, redis::Client& redis, db::AsyncPool& db,
                           metrics::Registry& m)
    : cfg_(cfg),
      redis_(redis),
      db_(db),
      l1_hits_(m.counter("lagoon_session_lookups_total", "Session lookups by the layer that answered",
                         {{"layer", "l1"}})),
      redis_hits_(m.counter("lagoon_session_lookups_total", "Session lookups by the layer that answered",
                            {{"layer", "redis"}})),
      postgres_(m.counter("lagoon_session_lookups_total", "Session lookups by the layer that answered",
                          {{"layer", "postgres"}})),
      unavailable_(m.counter("lagoon_session_lookups_total", "Session lookups by the layer that answered",
                             {{"layer", "unavailable"}})) {}

std::optional<db::Session> SessionStore::cached(std::int64_t key_id, const std::string& model) {
  std::lock_guard lock(mutex_);
  auto it = l1_.find(key_id);
  if (it == l1_.end() || Clock::now() - it->second.stored >= kL1Age || it->second.session.model != model ||
      it->second.session.expires_at_ms <= now_ms() + kMarginMs)
    return std::nullopt;
  return it->second.session;
}

void SessionStore::remember(std::int64_t key_id, const db::Session& s) {
  std::lock_guard lock(mutex_);
  if (l1_.size() >= cfg_.auth_cache_size && !l1_.count(key_id)) {
    if (l1_.empty()) return;
    l1_.erase(l1_.begin());
  }
  l1_.insert_or_assign(key_id, Entry{s, Clock::now()});
}

asio::awaitable<std::optional<db::Session>> SessionStore::session_for(const auth::KeyRecord& key,
                                                                       const std::string& model) {
  if (auto s = cached(key.key_id, model)) {
    l1_hits_.inc();
    co_return s;
  }
  bool coalesced = false;
  co_return co_await flights_.run(
      std::to_string(key.key_id) + '\n' + model,
      [this, key_id = key.key_id, user_id = key.user_id, &model] { return resolve(key_id, user_id, model); },
      coalesced);
}

asio::awaitable<std::optional<db::Session>> SessionStore::resolve(std::int64_t key_id, std::int64_t user_id,
                                                                  std::string model) {
  std::vector<std::string> get{"GET", redis_key(key_id)};
  auto r = co_await redis_.command(std::move(get));
  if (r.answered() && r.reply.type == redis::Reply::Type::string) {
    const auto j = nlohmann::json::parse(r.reply.str, nullptr, false);
    if (j.is_object() && j.value("model", "") == model && j.value("expires_at_ms", 0LL) > now_ms() + kMarginMs &&
        j.contains("id") && j["id"].is_string()) {
      db::Session s{j["id"].get<std::string>(), model, j["expires_at_ms"].get<std::int64_t>()};
      redis_hits_.inc();
      remember(key_id, s);
      co_return s;
    }
  }
  auto found = co_await db_.run("session", SessionFor(key_id, user_id, model, cfg_.session_ttl));
  if (!found) {
    unavailable_.inc();
    log::warn("session lookup failed", {{"api_key_id", key_id}, {"error", found.error().what()}});
    co_return std::nullopt;
  }
  std::optional<db::Session> s = std::move(*found);
  postgres_.inc();
  remember(key_id, *s);
  const auto ttl_s = std::max<std::int64_t>(1, (s->expires_at_ms - now_ms()) / 1000);
  const nlohmann::json cached{{"id", s->id}, {"model", s->model}, {"expires_at_ms", s->expires_at_ms}};
  redis_.send({"SET", redis_key(key_id), cached.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "EX",
               std::to_string(ttl_s)});
  co_return s;
}

}  // namespace lagoon::session
