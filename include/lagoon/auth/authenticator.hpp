// Authenticator: turns an Authorization header into a key record, or a refusal, on the reactor.
//
// Layers, cheapest first: format and checksum (a malformed key costs no lookup) → the key's tag
// (a made-up key of the current format costs no lookup either; see keys/api_key.hpp) → HMAC digest →
// in-process L1 cache → the KeySource (key_source.hpp: Redis `lagoon:key:{hex}`, then Postgres on a
// pooled connection borrowed only for that query). Results fill the layers above on the way back;
// unknown keys are cached too (negatively, briefly, in a bounded cache of their own that never evicts
// a known key) so a repeated bad key cannot reach Postgres again.
// Concurrent misses on one digest share one lookup (single-flight).
//
// The outcome is ok, denied (401) or unavailable (503): when the layers that could answer did not,
// the request is refused with 503 — never let through, never told its key is wrong.
//
// Revocations arrive as digests on a Redis channel and drop L1 entries; while that subscription is
// down, L1 entries are trusted for at most one second, so a revoked key still stops working quickly.
//
// Thread-safety: authenticate() and the invalidation calls may be used from any thread.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>

#include <boost/asio/awaitable.hpp>

#include "lagoon/auth/key_source.hpp"
#include "lagoon/auth/l1_cache.hpp"
#include "lagoon/config/config.hpp"
#include "lagoon/keys/api_key.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/util/single_flight.hpp"
#include "lagoon/util/wall_clock.hpp"

namespace lagoon::auth {

struct AuthResult {
  enum class Outcome { ok, denied, unavailable };
  Outcome outcome = Outcome::unavailable;
  // Why it was denied, for the access log: missing, malformed, forged, unknown, revoked, user_inactive,
  // expired. (Metrics fold the last four into "denied"; only `expired` tells the client, as key_expired.)
  std::string_view reason;
  std::shared_ptr<const CacheEntry> entry;  // set when ok

  bool ok() const noexcept { return outcome == Outcome::ok; }
  const KeyRecord& key() const noexcept { return entry->record; }
};

// The last well-formed key one connection presented, with its format and digest: a client on a
// kept-alive connection sends the same key with every request, and its HMAC (then its checksum) were the
// largest costs of authenticating a warm key. The token is compared in constant time and wiped when
// replaced and when the memo goes. One per connection; not thread-safe.
class KeyMemo {
 public:
  KeyMemo() = default;
  KeyMemo(const KeyMemo&) = delete;
  KeyMemo& operator=(const KeyMemo&) = delete;
  ~KeyMemo();
  struct Known {
    keys::Format format = keys::Format::malformed;
    keys::Digest digest{};
  };
  // What was remembered of `token`, or null when it is not the key remembered.
  const Known* recall(std::string_view token) const noexcept;
  // Remembers a well-formed `token` (replacing the last one) with its HMAC-SHA256(pepper, token).
  const Known& remember(std::string_view pepper, std::string_view token, keys::Format format);

 private:
  void forget() noexcept;
  std::string token_;  // empty until the first key (a well-formed key never is)
  Known known_;
};

class Authenticator {
 public:
  // `wall` tells expiry and the end of a rotated key's grace: checked on every request, cached or not,
  // so a key stops at the same second on every instance.
  Authenticator(const config::Config& cfg, KeySource& source, metrics::Registry& metrics,
                std::function<bool()> revocations_live, util::WallClock wall = util::make_wall_clock(""));
  ~Authenticator();
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // `authorization` is the Authorization header's value, empty when absent; `memo`, the connection's.
  boost::asio::awaitable<AuthResult> authenticate(std::string_view authorization, KeyMemo* memo = nullptr);

  // A digest (hex) published on the invalidation channel.
  void invalidate(std::string_view hex_digest);
  // Everything: revocations may have been missed (the subscription was re-established).
  void invalidate_all();

 private:
  struct Metrics;
  using EntryPtr = L1Cache::EntryPtr;

  boost::asio::awaitable<EntryPtr> lookup(const keys::Digest& digest);  // single-flight over fetch()
  boost::asio::awaitable<EntryPtr> fetch(const keys::Digest& digest);   // the source, into L1; null = unavailable
  AuthResult decide(EntryPtr entry);
  void remember(const keys::Digest& digest, const EntryPtr& entry, std::uint64_t generation,
                std::uint64_t unknown_generation);

  const config::Config& cfg_;
  KeySource& source_;
  std::function<bool()> revocations_live_;
  util::WallClock wall_;
  L1Cache l1_;          // known keys
  L1Cache l1_unknown_;  // keys Postgres said do not exist
  std::unique_ptr<Metrics> metrics_;
  util::SingleFlight<EntryPtr> flights_;  // by raw digest bytes
};

}  // namespace lagoon::auth
