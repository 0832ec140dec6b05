// L1Cache: the in-process authentication cache, digest → CacheEntry, bounded in size.
//
// Freshness is decided at read time (the caller passes the ages it trusts), because how long an entry
// may be trusted depends on whether revocations can currently reach this process. Every erase/clear
// bumps a generation; put() takes the generation its lookup started under and refuses to store a
// result that an invalidation overtook, so a lookup racing a revocation cannot re-cache the old record.
// Keys are compared with CRYPTO_memcmp. When a shard is full, an arbitrary entry makes room.
//
// Thread-safety: all members may be called from any thread (sharded mutexes).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "lagoon/auth/key_record.hpp"

namespace lagoon::auth {

class L1Cache {
 public:
  using Clock = std::chrono::steady_clock;
  using EntryPtr = std::shared_ptr<const CacheEntry>;

  explicit L1Cache(std::size_t capacity) : per_shard_((capacity + kShards - 1) / kShards) {}

  // The entry if present and younger than max_age for its kind (known key / unknown key).
  EntryPtr get(const keys::Digest& d, Clock::time_point now, Clock::duration max_age_known,
               Clock::duration max_age_unknown) const {
    auto& s = shard(d);
    std::lock_guard lock(s.mutex);
    auto it = s.map.find(d);
    if (it == s.map.end()) return nullptr;
    const auto max_age = it->second.entry->unknown ? max_age_unknown : max_age_known;
    if (now - it->second.stored >= max_age) return nullptr;
    return it->second.entry;
  }

  std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }

  // Stores unless an invalidation happened since `observed_generation`. Returns whether it stored.
  bool put(const keys::Digest& d, EntryPtr entry, Clock::time_point now, std::uint64_t observed_generation) {
    if (per_shard_ == 0) return false;
    auto& s = shard(d);
    std::lock_guard lock(s.mutex);
    if (generation_.load(std::memory_order_acquire) != observed_generation) return false;
    if (s.map.size() >= per_shard_ && s.map.find(d) == s.map.end()) s.map.erase(s.map.begin());
    s.map.insert_or_assign(d, Slot{std::move(entry), now});
    return true;
  }

  void erase(const keys::Digest& d) {
    auto& s = shard(d);
    std::lock_guard lock(s.mutex);
    generation_.fetch_add(1, std::memory_order_acq_rel);
    s.map.erase(d);
  }

  void clear() {
    generation_.fetch_add(1, std::memory_order_acq_rel);
    for (auto& s : shards_) {
      std::lock_guard lock(s.mutex);
      s.map.clear();
    }
  }

  std::size_t size() const {
    std::size_t n = 0;
    for (auto& s : shards_) {
      std::lock_guard lock(s.mutex);
      n += s.map.size();
    }
    return n;
  }

 private:
  static constexpr std::size_t kShards = 16;

  struct Hash {
    std::size_t operator()(const keys::Digest& d) const noexcept {
      std::size_t h;  // an HMAC output: its bytes are already uniformly distributed
      std::memcpy(&h, d.data(), sizeof h);
      return h;
    }
  };
  struct Equal {
    bool operator()(const keys::Digest& a, const keys::Digest& b) const noexcept { return keys::digests_equal(a, b); }
  };
  struct Slot {
    EntryPtr entry;
    Clock::time_point stored;
  };
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<keys::Digest, Slot, Hash, Equal> map;
  };

  Shard& shard(const keys::Digest& d) const noexcept { return shards_[d[31] % kShards]; }

  const std::size_t per_shard_;
  mutable std::array<Shard, kShards> shards_;
  std::atomic<std::uint64_t> generation_{0};
};

}  // namespace lagoon::auth
