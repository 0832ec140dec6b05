#include "lagoon/auth/key_source.hpp"

#include <pqxx/pqxx>

#include "lagoon/db/accounts.hpp"
#include "lagoon/db/async_pool.hpp"
#include "lagoon/log/log.hpp"
#include "lagoon/redis/client.hpp"

namespace lagoon::auth {
namespace {

// How long Redis keeps a known key's entry; revocation rewrites it, so this only bounds how long an
// entry for a key nobody uses lingers.
constexpr long long kRedisKnownTtlSeconds = 15 * 60;

// The Postgres query run on a lease.
struct FindKey {
  FindKey(const keys::Digest& d, bool p) : digest(d), prepared(p) {}
  std::optional<KeyRecord> operator()(pqxx::connection& c) const { return db::find_key_for_auth(c, digest, prepared); }
  keys::Digest digest;
  bool prepared;
};

}  // namespace

struct StoredKeys::Metrics {
  explicit Metrics(metrics::Registry& m)
      : redis_hit(lookup(m, "redis", "hit")),
        redis_negative(lookup(m, "redis", "negative")),
        redis_miss(lookup(m, "redis", "miss")),
        redis_error(lookup(m, "redis", "error")),
        postgres_hit(lookup(m, "postgres", "hit")),
        postgres_miss(lookup(m, "postgres", "miss")),
        postgres_error(lookup(m, "postgres", "error")) {}

  static metrics::Counter& lookup(metrics::Registry& m, const char* layer, const char* result) {
    return m.counter("lagoon_auth_lookups_total",
                     "Key lookups per cache layer; a postgres miss is a key that does not exist",
                     {{"layer", layer}, {"result", result}});
  }

  // "negative": Redis said the key does not exist, rather than holding a record.
  metrics::Counter &redis_hit, &redis_negative, &redis_miss, &redis_error, &postgres_hit, &postgres_miss,
      &postgres_error;
};

StoredKeys::StoredKeys(const config::Config& cfg, redis::Client& redis, db::AsyncPool& db, metrics::Registry& metrics)
    : cfg_(cfg), redis_(redis), db_(db), metrics_(std::make_unique<Metrics>(metrics)) {}

StoredKeys::~StoredKeys() = default;

boost::asio::awaitable<std::shared_ptr<const CacheEntry>> StoredKeys::fetch(const keys::Digest& digest) {
  auto& m = *metrics_;
  const std::string redis_key = cache_key(cfg_.redis_prefix, digest);

  bool overwrite = false;  // Redis holds something we cannot read: replace it rather than keep it
  // Built before the co_await: GCC 12 cannot keep an initializer_list's array across a suspension.
  std::vector<std::string> get{"GET", redis_key};
  auto cached = co_await redis_.command(std::move(get));
  if (cached.answered()) {
    if (cached.reply.type == redis::Reply::Type::string) {
      if (auto e = from_cache_json(cached.reply.str, digest)) {
        (e->unknown ? m.redis_negative : m.redis_hit).inc();
        co_return std::make_shared<const CacheEntry>(std::move(*e));
      }
      overwrite = true;
    }
    m.redis_miss.inc();
  } else {
    m.redis_error.inc();
  }

  auto record = co_await db_.run("auth", FindKey(digest, cfg_.db_prepared_statements));
  if (!record) {
    m.postgres_error.inc();
    log::warn("postgres key lookup failed", {{"error", record.error().what()}});
    co_return nullptr;
  }
  CacheEntry e;
  if (*record && keys::digests_equal((*record)->digest, digest)) {
    m.postgres_hit.inc();
    e.record = std::move(**record);
  } else {
    m.postgres_miss.inc();
    e.unknown = true;
    e.record.digest = digest;
  }
  auto entry = std::make_shared<const CacheEntry>(std::move(e));
  if (entry->unknown && cfg_.auth_negative_ttl.count() == 0) co_return entry;
  const long long ttl =
      entry->unknown ? std::max<long long>(1, (cfg_.auth_negative_ttl.count() + 999) / 1000) : kRedisKnownTtlSeconds;
  // NX: an invalidation may have written a revoked record since we looked; never overwrite it with
  // what this (older) lookup saw.
  std::vector<std::string> set{"SET", redis_key, to_cache_json(*entry, digest), "EX", std::to_string(ttl)};
  if (!overwrite) set.emplace_back("NX");
  redis_.send(std::move(set));
  co_return entry;
}

}  // namespace lagoon::auth
