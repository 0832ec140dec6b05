// KeySource: where the authenticator looks a key up once its in-process caches have not got it.
// StoredKeys (Redis `lagoon:key:{hex}`, then Postgres on a pooled lease, filling Redis on the way
// back) is the real one; the authenticator's unit tests use a fake.
// Thread-safety: fetch() from any thread.
#pragma once

#include <memory>

#include <boost/asio/awaitable.hpp>

#include "lagoon/auth/key_record.hpp"
#include "lagoon/config/config.hpp"
#include "lagoon/keys/api_key.hpp"
#include "lagoon/metrics/registry.hpp"

namespace lagoon::redis {
class Client;
}
namespace lagoon::db {
class AsyncPool;
}

namespace lagoon::auth {

class KeySource {
 public:
  virtual ~KeySource() = default;
  // The digest's entry (`unknown` when no key has it); null when no layer could answer.
  virtual boost::asio::awaitable<std::shared_ptr<const CacheEntry>> fetch(const keys::Digest& digest) = 0;
};

class StoredKeys final : public KeySource {
 public:
  StoredKeys(const config::Config& cfg, redis::Client& redis, db::AsyncPool& db, metrics::Registry& metrics);
  ~StoredKeys() override;
  boost::asio::awaitable<std::shared_ptr<const CacheEntry>> fetch(const keys::Digest& digest) override;

 private:
  struct Metrics;
  const config::Config& cfg_;
  redis::Client& redis_;
  db::AsyncPool& db_;
  std::unique_ptr<Metrics> metrics_;
};

}  // namespace lagoon::auth
