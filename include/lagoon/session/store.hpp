// SessionStore: the session a request belongs to, found as keys are — in-process cache, then Redis
// `{prefix}session:{api_key_id}` (`lagoon:session:…` by default; kept as long as the session lives), then Postgres (db::session_for on a
// lease, which also creates or replaces it). Concurrent requests of one key for one model share one
// lookup. The in-process cache trusts an entry for a few seconds only: another instance may have
// replaced the session for another model meanwhile.
// Thread-safety: session_for() from any thread.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include <boost/asio/awaitable.hpp>

#include "lagoon/auth/key_record.hpp"
#include "lagoon/config/config.hpp"
#include "lagoon/db/sessions.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/util/single_flight.hpp"

namespace lagoon::redis {
class Client;
}
namespace lagoon::db {
class AsyncPool;
}

namespace lagoon::session {

// The seam the relay sees: SessionStore is the real source; unit tests use a fake.
class SessionSource {
 public:
  virtual ~SessionSource() = default;
  // nullopt when no layer could answer (Postgres needed and unavailable).
  virtual boost::asio::awaitable<std::optional<db::Session>> session_for(const auth::KeyRecord& key,
                                                                         const std::string& model) = 0;
};

class SessionStore final : public SessionSource {
 public:
  SessionStore(const config::Config& cfg, redis::Client& redis, db::AsyncPool& db, metrics::Registry& metrics);

  boost::asio::awaitable<std::optional<db::Session>> session_for(const auth::KeyRecord& key,
                                                                 const std::string& model) override;

 private:
  boost::asio::awaitable<std::optional<db::Session>> resolve(std::int64_t key_id, std::int64_t user_id,
                                                             std::string model);
  std::string redis_key(std::int64_t key_id) const;
  std::optional<db::Session> cached(std::int64_t key_id, const std::string& model);
  void remember(std::int64_t key_id, const db::Session& s);

  const config::Config& cfg_;
  redis::Client& redis_;
  db::AsyncPool& db_;
  std::mutex mutex_;
  struct Entry {
    db::Session session;
    std::chrono::steady_clock::time_point stored;
  };
  std::unordered_map<std::int64_t, Entry> l1_;
  util::SingleFlight<std::optional<db::Session>> flights_;
  metrics::Counter &l1_hits_, &redis_hits_, &postgres_, &unavailable_;
};

}  // namespace lagoon::session
