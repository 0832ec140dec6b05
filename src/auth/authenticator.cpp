#include "lagoon/auth/authenticator.hpp"

#include <openssl/crypto.h>

#include "lagoon/auth/bearer.hpp"

namespace lagoon::auth {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {
// While revocations cannot reach this process, L1 trusts an entry this long at most.
constexpr std::chrono::seconds kUnsubscribedL1Age{1};
}  // namespace

struct Authenticator::Metrics {
  explicit Metrics(metrics::Registry& m)
      : ok(outcome(m, "ok")),
        denied(outcome(m, "denied")),
        unavailable(outcome(m, "unavailable")),
        missing(reason(m, "missing")),
        malformed(reason(m, "malformed")),
        forged(reason(m, "forged")),
        refused(reason(m, "denied")),
        legacy(m.counter("lagoon_auth_legacy_keys_total",
                         "Requests with a key of the format before tags (rotate them: they cost a lookup when "
                         "made up)")),
        l1_hit(lookup(m, "l1", "hit")),
        l1_negative(lookup(m, "l1", "negative")),
        l1_miss(lookup(m, "l1", "miss")),
        coalesced(m.counter("lagoon_auth_coalesced_total",
                            "Requests that waited for another request's lookup of the same key (single-flight)")),
        invalidations(m.counter("lagoon_auth_invalidations_total", "Cache invalidations received")) {}

  static metrics::Counter& outcome(metrics::Registry& m, const char* o) {
    return m.counter("lagoon_auth_requests_total", "Authentication decisions, by outcome", {{"outcome", o}});
  }
  static metrics::Counter& reason(metrics::Registry& m, const char* r) {
    // Whether a well-formed key is unknown, revoked or its user deactivated is in the access log only:
    // /metrics must not tell the holder of a leaked key which of these it is.
    return m.counter("lagoon_auth_denied_total",
                     "Requests refused with 401: missing, malformed, forged (a tag Lagoon did not make) or denied",
                     {{"reason", r}});
  }
  static metrics::Counter& lookup(metrics::Registry& m, const char* layer, const char* result) {
    return m.counter("lagoon_auth_lookups_total",
                     "Key lookups per cache layer; a postgres miss is a key that does not exist",
                     {{"layer", layer}, {"result", result}});
  }

  metrics::Counter &ok, &denied, &unavailable;
  metrics::Counter &missing, &malformed, &forged, &refused;
  metrics::Counter& legacy;
  // "negative": the cache said the key does not exist (the negative cache), rather than a record.
  // The Redis and Postgres layers count themselves (StoredKeys).
  metrics::Counter &l1_hit, &l1_negative, &l1_miss;
  metrics::Counter& coalesced;
  metrics::Counter& invalidations;
};

Authenticator::Authenticator(const config::Config& cfg, KeySource& source, metrics::Registry& metrics,
                             std::function<bool()> revocations_live, util::WallClock wall)
    : cfg_(cfg),
      source_(source),
      revocations_live_(std::move(revocations_live)),
      wall_(std::move(wall)),
      l1_(cfg.auth_cache_ttl.count() > 0 ? cfg.auth_cache_size : 0),
      l1_unknown_(cfg.auth_negative_ttl.count() > 0 ? cfg.auth_negative_cache_size : 0),
      metrics_(std::make_unique<Metrics>(metrics)) {}

Authenticator::~Authenticator() = default;

KeyMemo::~KeyMemo() { forget(); }

void KeyMemo::forget() noexcept {
  OPENSSL_cleanse(token_.data(), token_.size());
  OPENSSL_cleanse(known_.digest.data(), known_.digest.size());
  token_.clear();
}

const KeyMemo::Known* KeyMemo::recall(std::string_view token) const noexcept {
  const bool same = !token_.empty() && token.size() == token_.size() &&
                    CRYPTO_memcmp(token.data(), token_.data(), token.size()) == 0;
  return same ? &known_ : nullptr;
}

const KeyMemo::Known& KeyMemo::remember(std::string_view pepper, std::string_view token, keys::Format format) {
  forget();
  known_ = {format, keys::digest(pepper, token)};
  token_.assign(token);
  return known_;
}

asio::awaitable<AuthResult> Authenticator::authenticate(std::string_view authorization, KeyMemo* memo) {
  auto& m = *metrics_;
  const auto token = bearer_token(authorization);
  if (!token) {
    m.denied.inc();
    m.missing.inc();
    co_return AuthResult{AuthResult::Outcome::denied, "missing", nullptr};
  }
  // The key this connection sent last was well-formed then and is now: no checksum, no HMAC.
  KeyMemo::Known fresh;
  const KeyMemo::Known* known = memo ? memo->recall(*token) : nullptr;
  if (!known) {
    fresh.format = keys::format_of(*token);
    if (fresh.format == keys::Format::malformed) {
      m.denied.inc();
      m.malformed.inc();
      co_return AuthResult{AuthResult::Outcome::denied, "malformed", nullptr};
    }
    if (memo) {
      known = &memo->remember(cfg_.key_pepper, *token, fresh.format);
    } else {
      fresh.digest = keys::digest(cfg_.key_pepper, *token);
      known = &fresh;
    }
  }
  const keys::Format format = known->format;
  const keys::Digest digest = known->digest;
  if (format == keys::Format::legacy) m.legacy.inc();

  const auto now = Clock::now();
  const Clock::duration known_age =
      revocations_live_() ? Clock::duration(cfg_.auth_cache_ttl)
                          : std::min<Clock::duration>(cfg_.auth_cache_ttl, kUnsubscribedL1Age);
  // A key whose digest is a cached key's is that key: the warm path needs no second HMAC for the tag.
  if (auto hit = l1_.get(digest, now, known_age, known_age)) {
    m.l1_hit.inc();
    co_return decide(std::move(hit));
  }
  // Before any other cache or lookup: a made-up key must cost no Redis call, no Postgres query and no
  // cache slot, however many of them arrive.
  if (format == keys::Format::tagged && !keys::tag_matches(cfg_.key_pepper, *token)) {
    m.denied.inc();
    m.forged.inc();
    co_return AuthResult{AuthResult::Outcome::denied, "forged", nullptr};
  }
  if (auto hit = l1_unknown_.get(digest, now, cfg_.auth_negative_ttl, cfg_.auth_negative_ttl)) {
    m.l1_negative.inc();
    co_return decide(std::move(hit));
  }
  m.l1_miss.inc();
  auto entry = co_await lookup(digest);
  if (!entry) {
    m.unavailable.inc();
    co_return AuthResult{AuthResult::Outcome::unavailable, "unavailable", nullptr};
  }
  co_return decide(std::move(entry));
}

AuthResult Authenticator::decide(EntryPtr entry) {
  auto& m = *metrics_;
  std::string_view reason;
  if (entry->unknown) {
    reason = "unknown";
  } else if (!entry->record.key_active) {
    reason = "revoked";
  } else if (!entry->record.user_active) {
    reason = "user_inactive";
  } else if (const auto now = util::unix_us(wall_()); entry->record.policy.revoked(now)) {
    reason = "revoked";  // a rotated key past its grace
  } else if (entry->record.policy.expired(now)) {
    reason = "expired";
  } else {
    m.ok.inc();
    return AuthResult{AuthResult::Outcome::ok, {}, std::move(entry)};
  }
  m.refused.inc();
  m.denied.inc();
  return AuthResult{AuthResult::Outcome::denied, reason, nullptr};
}

asio::awaitable<Authenticator::EntryPtr> Authenticator::lookup(const keys::Digest& digest) {
  bool coalesced = false;
  // The lambda only returns the member coroutine's awaitable: GCC 12 mishandles lambda coroutines.
  auto result = co_await flights_.run(std::string(reinterpret_cast<const char*>(digest.data()), digest.size()),
                                      [this, &digest] { return fetch(digest); }, coalesced);
  if (coalesced) metrics_->coalesced.inc();
  co_return result;
}

asio::awaitable<Authenticator::EntryPtr> Authenticator::fetch(const keys::Digest& digest) {
  // Taken before the lookup: an invalidation that arrives meanwhile must win over what it returns.
  const std::uint64_t generation = l1_.generation();
  const std::uint64_t unknown_generation = l1_unknown_.generation();
  auto entry = co_await source_.fetch(digest);
  if (entry) remember(digest, entry, generation, unknown_generation);
  co_return entry;
}

// Unknown keys in a cache of their own: however many made-up legacy keys arrive, they never push a
// known key out of L1.
void Authenticator::remember(const keys::Digest& digest, const EntryPtr& entry, std::uint64_t generation,
                             std::uint64_t unknown_generation) {
  if (entry->unknown)
    l1_unknown_.put(digest, entry, Clock::now(), unknown_generation);
  else
    l1_.put(digest, entry, Clock::now(), generation);
}

void Authenticator::invalidate(std::string_view hex_digest) {
  metrics_->invalidations.inc();
  if (auto d = keys::from_hex(hex_digest)) {
    l1_.erase(*d);
    l1_unknown_.erase(*d);
  }
}

void Authenticator::invalidate_all() {
  metrics_->invalidations.inc();
  l1_.clear();
  l1_unknown_.clear();
}

}  // namespace lagoon::auth
