#include "lagoon/usage/ring.hpp"

#include <cstring>

namespace lagoon::usage {

namespace {
constexpr char kMagic[8] = {'L', 'G', 'N', 'R', 'I', 'N', 'G', '1'};
constexpr std::size_t kHeaderBytes = 4096;

std::size_t round_up_pow2(std::size_t n) {
  std::size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

using Atomic = std::atomic_ref<std::uint64_t>;
}  // namespace

struct Ring::Header {
  char magic[8];
  std::uint64_t capacity;
  std::uint64_t slot_bytes;
  alignas(64) std::uint64_t enqueue_pos;  // next position a producer claims
  alignas(64) std::uint64_t release_pos;  // every position below is in Postgres or the journal
};

struct Ring::Slot {
  std::uint64_t seq;  // == pos: free for position pos; == pos + 1: holds the record of position pos
  std::byte payload[kSlotPayload];
};

Ring::Ring(const std::string& path, std::size_t capacity) : path_(path), file_(path, "usage ring") {
  static_assert(sizeof(Slot) == 512);
  static_assert(sizeof(Header) <= kHeaderBytes);
  capacity = round_up_pow2(std::max<std::size_t>(capacity, 2));
  const std::size_t file_size = file_.size();

  bool existing = false;
  if (file_size >= kHeaderBytes) {
    Header h{};
    if (file_.read_at(&h, sizeof h, 0) && std::memcmp(h.magic, kMagic, 8) == 0 && h.slot_bytes == sizeof(Slot) &&
        h.capacity >= 2 && (h.capacity & (h.capacity - 1)) == 0 &&
        file_size >= kHeaderBytes + h.capacity * sizeof(Slot)) {
      existing = true;
      map(h.capacity, false);
      // Every position claimed since the last release is either published (replay it) or was being
      // written when the process died (never acknowledged: skip it).
      const std::uint64_t release = header_->release_pos;
      const std::uint64_t claimed = header_->enqueue_pos;
      for (std::uint64_t pos = release; pos < claimed && pos - release < capacity_; ++pos) {
        const Slot& s = slots_[pos & mask_];
        if (s.seq != pos + 1) continue;
        if (auto r = decode(std::span<const std::byte, kSlotPayload>(s.payload, kSlotPayload)))
          recovered_.push_back(std::move(*r));
      }
    }
  }
  if (!existing || (capacity_ != capacity && recovered_.empty())) {
    if (existing) unmap();
    map(capacity, true);
    initialize();
  }
  // The consumer starts after what was recovered; those positions are freed by release_recovered()
  // once their records are stored elsewhere, before anything else is released.
  read_pos_ = Atomic(header_->enqueue_pos).load(std::memory_order_relaxed);
  recovered_end_ = read_pos_;
  if (recovered_.empty()) release_recovered();
}

Ring::~Ring() = default;  // the file unmaps and closes itself

void Ring::map(std::size_t capacity, bool create) {
  capacity_ = capacity;
  mask_ = capacity - 1;
  std::byte* base = file_.map(kHeaderBytes + capacity * sizeof(Slot),
                              create ? MappedFile::Sizing::resize : MappedFile::Sizing::keep);
  header_ = reinterpret_cast<Header*>(base);
  slots_ = reinterpret_cast<Slot*>(base + kHeaderBytes);
}

void Ring::unmap() noexcept {
  file_.unmap();
  header_ = nullptr;
  slots_ = nullptr;
}

void Ring::initialize() {
  for (std::size_t i = 0; i < capacity_; ++i) Atomic(slots_[i].seq).store(i, std::memory_order_relaxed);
  Atomic(header_->enqueue_pos).store(0, std::memory_order_relaxed);
  Atomic(header_->release_pos).store(0, std::memory_order_relaxed);
  header_->capacity = capacity_;
  header_->slot_bytes = sizeof(Slot);
  std::atomic_thread_fence(std::memory_order_release);
  std::memcpy(header_->magic, kMagic, sizeof kMagic);  // last: a half-initialized file is not a ring
  read_pos_ = 0;
}

void Ring::release_recovered() {
  recovered_.clear();
  recovered_.shrink_to_fit();
  // Producers may be pushing already: only the slots of the recovered range are touched, in place.
  const auto from = Atomic(header_->release_pos).load(std::memory_order_relaxed);
  if (recovered_end_ > from) release(static_cast<std::size_t>(recovered_end_ - from));
}

bool Ring::try_push(const Record& r) noexcept {
  Atomic enqueue(header_->enqueue_pos);
  std::uint64_t pos = enqueue.load(std::memory_order_relaxed);
  Slot* slot;
  for (;;) {
    slot = &slots_[pos & mask_];
    const std::uint64_t seq = Atomic(slot->seq).load(std::memory_order_acquire);
    const auto dif = static_cast<std::int64_t>(seq - pos);
    if (dif == 0) {
      if (enqueue.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) break;
    } else if (dif < 0) {
      return false;  // the slot still holds an unreleased record: full
    } else {
      pos = enqueue.load(std::memory_order_relaxed);
    }
  }
  encode(r, std::span<std::byte, kSlotPayload>(slot->payload, kSlotPayload));
  Atomic(slot->seq).store(pos + 1, std::memory_order_release);
  return true;
}

std::size_t Ring::peek(std::vector<Record>& out, std::size_t max) {
  std::size_t n = 0;
  while (n < max) {
    Slot& s = slots_[read_pos_ & mask_];
    if (Atomic(s.seq).load(std::memory_order_acquire) != read_pos_ + 1) break;
    auto r = decode(std::span<const std::byte, kSlotPayload>(s.payload, kSlotPayload));
    // encode() always writes a decodable record; a failure means the file was damaged from outside.
    // An empty record keeps release() in step; the flusher reports and skips it.
    out.push_back(r ? std::move(*r) : Record{});
    ++read_pos_;
    ++n;
  }
  return n;
}

void Ring::release(std::size_t n) {
  Atomic release(header_->release_pos);
  const std::uint64_t from = release.load(std::memory_order_relaxed);
  for (std::uint64_t pos = from; pos < from + n; ++pos)
    Atomic(slots_[pos & mask_].seq).store(pos + capacity_, std::memory_order_release);
  release.store(from + n, std::memory_order_release);
}

void Ring::rewind() noexcept { read_pos_ = Atomic(header_->release_pos).load(std::memory_order_relaxed); }

std::size_t Ring::depth() const noexcept {
  const auto e = Atomic(header_->enqueue_pos).load(std::memory_order_relaxed);
  const auto r = Atomic(header_->release_pos).load(std::memory_order_relaxed);
  return e > r ? static_cast<std::size_t>(e - r) : 0;
}

}  // namespace lagoon::usage
