#include "lagoon/usage/in_flight.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <string_view>
#include <unordered_set>

#include "lagoon/accounting/outcome.hpp"
#include "lagoon/usage/ring.hpp"

namespace lagoon::usage {

namespace {
constexpr char kMagic[8] = {'L', 'G', 'N', 'I', 'N', 'F', 'L', '1'};
constexpr std::size_t kHeaderBytes = 4096;

// The control word of a slot. 0: free.
constexpr std::uint64_t kClaimed = 1 << 0;
constexpr std::uint64_t kHasRecord = 1 << 1;  // a record was written; kBuffer names the buffer
constexpr std::uint64_t kBuffer = 1 << 2;
constexpr std::uint64_t kFinal = 1 << 3;  // the record is the request's final one, not a snapshot
constexpr std::uint64_t kKnownBits = kClaimed | kHasRecord | kBuffer | kFinal;

using Atomic = std::atomic_ref<std::uint64_t>;
using AtomicInt = std::atomic_ref<std::int64_t>;

std::int64_t now_us() noexcept {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t clamp_tokens(std::int64_t v) noexcept { return std::clamp<std::int64_t>(v, 0, INT32_MAX); }
}  // namespace

struct InFlight::Header {
  char magic[8];
  std::uint64_t slots;
  std::uint64_t slot_bytes;
};

struct alignas(64) InFlight::Slot {
  std::uint64_t control;
  std::int64_t prompt_tokens;      // estimate
  std::int64_t completion_tokens;  // estimate of what was relayed so far
  std::int64_t last_seen_us;       // Unix time of the last note: the duration of an interrupted request
  std::byte record[2][kSlotPayload];
};

InFlight::InFlight(const std::string& path, std::size_t slots) : path_(path), file_(path, "usage in-flight table") {
  static_assert(sizeof(Header) <= kHeaderBytes);
  static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free);
  slots = std::max<std::size_t>(slots, 1);
  const std::size_t file_size = file_.size();

  bool existing = false;
  if (file_size >= kHeaderBytes) {
    Header h{};
    if (file_.read_at(&h, sizeof h, 0) && std::memcmp(h.magic, kMagic, 8) == 0 && h.slot_bytes == sizeof(Slot) &&
        h.slots >= 1 && h.slots <= (file_size - kHeaderBytes) / sizeof(Slot)) {
      existing = true;
      map(h.slots, false);
      recover();
    }
  }
  if (!existing || (count_ != slots && recovered_.empty())) {
    if (existing) unmap();
    map(slots, true);
    initialize();
  }
  in_use_.store(recovered_.size(), std::memory_order_relaxed);
}

InFlight::~InFlight() = default;  // the file unmaps and closes itself

void InFlight::map(std::size_t slots, bool create) {
  count_ = slots;
  // Cut to nothing first: every slot of a new table reads as free without this process touching it.
  std::byte* base = file_.map(kHeaderBytes + slots * sizeof(Slot),
                              create ? MappedFile::Sizing::cut_and_size : MappedFile::Sizing::keep);
  header_ = reinterpret_cast<Header*>(base);
  slots_ = reinterpret_cast<Slot*>(base + kHeaderBytes);
}

void InFlight::unmap() noexcept {
  file_.unmap();
  header_ = nullptr;
  slots_ = nullptr;
}

void InFlight::initialize() {
  header_->slots = count_;
  header_->slot_bytes = sizeof(Slot);
  std::atomic_thread_fence(std::memory_order_release);
  std::memcpy(header_->magic, kMagic, sizeof kMagic);  // last: a half-initialized file is not a table
}

void InFlight::recover() {
  for (std::size_t i = 0; i < count_; ++i) {
    Slot& s = slots_[i];
    const std::uint64_t ctl = Atomic(s.control).load(std::memory_order_acquire);
    if (ctl == 0) continue;
    std::optional<Record> r;
    // Claimed but nothing written yet (killed within nanoseconds of the claim) leaves no request id to
    // bill; unknown bits mean the slot is not ours.
    if ((ctl & ~kKnownBits) == 0 && (ctl & kClaimed) && (ctl & kHasRecord))
      r = decode(std::span<const std::byte, kSlotPayload>(s.record[(ctl & kBuffer) ? 1 : 0], kSlotPayload));
    if (!r) {
      ++unreadable_;
      free_slot(s);
      continue;
    }
    if (!(ctl & kFinal))
      *r = interrupted_record(std::move(*r), s.prompt_tokens, s.completion_tokens, s.last_seen_us);
    recovered_.push_back({i, std::move(*r)});
  }
}

void InFlight::free_slot(Slot& s) noexcept { Atomic(s.control).store(0, std::memory_order_release); }

void InFlight::release_recovered(std::size_t i) noexcept {
  free_slot(slots_[recovered_.at(i).slot]);
  in_use_.fetch_sub(1, std::memory_order_release);
}

InFlight::Entry InFlight::open(const Record& r) noexcept {
  Entry e;
  // Reserving a place first guarantees the search below finds a free slot, so it needs no bound.
  if (in_use_.fetch_add(1, std::memory_order_acquire) >= count_) {
    in_use_.fetch_sub(1, std::memory_order_relaxed);
    return e;
  }
  std::size_t i = next_.fetch_add(1, std::memory_order_relaxed) % count_;
  for (;;) {
    std::uint64_t expected = 0;
    if (Atomic(slots_[i].control).compare_exchange_strong(expected, kClaimed, std::memory_order_acquire)) break;
    if (++i == count_) i = 0;
  }
  Slot& s = slots_[i];
  AtomicInt(s.prompt_tokens).store(0, std::memory_order_relaxed);
  AtomicInt(s.completion_tokens).store(0, std::memory_order_relaxed);
  e.slot_ = &s;
  e.write(r, false);
  return e;
}

void InFlight::finish(Entry& e, const Record& final_record) noexcept {
  if (e) e.write(final_record, true);
}

void InFlight::close(Entry& e) noexcept {
  if (!e) return;
  free_slot(*e.slot_);
  e.slot_ = nullptr;
  in_use_.fetch_sub(1, std::memory_order_release);
}

void InFlight::Entry::write(const Record& r, bool final) noexcept {
  const std::uint64_t ctl = Atomic(slot_->control).load(std::memory_order_relaxed);
  // Into the buffer not published now, so a kill mid-write leaves the published one whole.
  const bool second = (ctl & kHasRecord) && !(ctl & kBuffer);
  encode(r, std::span<std::byte, kSlotPayload>(slot_->record[second ? 1 : 0], kSlotPayload));
  AtomicInt(slot_->last_seen_us).store(now_us(), std::memory_order_relaxed);
  Atomic(slot_->control)
      .store(kClaimed | kHasRecord | (second ? kBuffer : 0) | (final ? kFinal : 0), std::memory_order_release);
}

void InFlight::Entry::note(const Record& r) noexcept {
  if (slot_) write(r, false);
}

void InFlight::Entry::note_prompt(std::int64_t tokens) noexcept {
  if (slot_) AtomicInt(slot_->prompt_tokens).store(tokens, std::memory_order_relaxed);
}

void InFlight::Entry::note_completion(std::int64_t tokens) noexcept {
  if (!slot_) return;
  AtomicInt(slot_->completion_tokens).store(tokens, std::memory_order_relaxed);
  AtomicInt(slot_->last_seen_us).store(now_us(), std::memory_order_relaxed);
}

Record interrupted_record(Record last, std::int64_t prompt_tokens, std::int64_t completion_tokens,
                          std::int64_t last_seen_us) {
  // The file may be damaged: counts are clamped to what a row can hold.
  const std::int64_t prompt = std::max<std::int64_t>(last.prompt_tokens.value_or(0), clamp_tokens(prompt_tokens));
  const std::int64_t completion =
      std::max<std::int64_t>(last.completion_tokens.value_or(0), clamp_tokens(completion_tokens));
  last.outcome = std::string(accounting::label(accounting::Outcome::interrupted));
  last.tokens_estimated = true;
  last.prompt_tokens = static_cast<std::int32_t>(prompt);
  last.completion_tokens = static_cast<std::int32_t>(completion);
  last.total_tokens = static_cast<std::int32_t>(clamp_tokens(prompt + completion));
  if (last_seen_us > last.started_at_us) last.duration_ms = static_cast<double>(last_seen_us - last.started_at_us) / 1000.0;
  return last;
}

HandOver recover_into(InFlight& table, Ring& ring) {
  HandOver out;
  std::unordered_set<std::string_view> in_ring;
  for (const auto& r : ring.recovered()) in_ring.insert(r.request_id);
  const auto& rows = table.recovered();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (in_ring.contains(rows[i].record.request_id)) {
      ++out.duplicates;
    } else if (ring.try_push(rows[i].record)) {
      ++out.queued;
    } else {
      ++out.kept;
      continue;
    }
    table.release_recovered(i);
  }
  return out;
}

}  // namespace lagoon::usage
