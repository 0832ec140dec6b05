// InFlight: the usage of requests still being answered, kept where a crash cannot lose it.
//
// The Ring makes a record durable once the request ends; a process killed (SIGKILL, OOM, a crash) with
// streams open would lose those requests' rows although the upstream spent tokens on them. So each
// authenticated request claims a slot in this table of fixed-size slots, in a memory-mapped file beside
// the ring, and writes there what is known so far that matters for billing: its record as it stands
// (model, session, status) and estimates of its prompt and of the completion relayed so far. The kernel
// keeps a shared file mapping's pages when a process dies, so the next start finds every slot a dead
// process left claimed and turns it into a row: outcome `interrupted`, tokens estimated.
//
// A record is written into one of two buffers per slot and published by one release store of the slot's
// control word naming the buffer, so a process killed mid-write leaves the previous snapshot readable.
// At the end the final record is written into the slot (marked final), pushed to the ring, and only then
// is the slot freed: a crash between the two leaves the same final record twice — never an `interrupted`
// row beside or instead of the real one — and recover_into() drops what the ring already holds.
//
// Costs on the request path: open() two atomic increments and one CAS, plus encode() of the record
// (a few memcpys into ~500 bytes); note() one encode(); note_completion() two plain stores and a vDSO
// clock read; close() two stores. No lock, no allocation, no system call. Bounded: when every slot is
// taken open() returns an empty Entry (the caller counts it) and the request goes on untracked.
//
// The file is locked (flock) so two processes cannot share it.
// Thread-safety: open() and close() from any number of threads; one Entry is used by one thread at a
// time (its request's); recovered() and release_recovered() from the owner, before anyone calls open()
// can matter (they touch only slots recovered at start-up, so concurrent open() is harmless).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lagoon/usage/mapped_file.hpp"
#include "lagoon/usage/record.hpp"

namespace lagoon::usage {

class Ring;

class InFlight {
  struct Slot;

 public:
  // A request's claim on one slot: what the request learns is written through it. Empty (tracks
  // nothing, every call is a no-op) when the table was full. A plain handle: copies refer to the same
  // slot, and none may be used once the slot was closed.
  class Entry {
   public:
    Entry() = default;
    explicit operator bool() const noexcept { return slot_ != nullptr; }
    // The request's record as it stands (strings and status); replaces the previous snapshot.
    void note(const Record& r) noexcept;
    // Estimated tokens of the prompt, and of the completion relayed so far (0 or more).
    void note_prompt(std::int64_t tokens) noexcept;
    void note_completion(std::int64_t tokens) noexcept;

   private:
    friend class InFlight;
    void write(const Record& r, bool final) noexcept;
    Slot* slot_ = nullptr;
  };

  // What a dead process left in one slot, as the row to store.
  struct Recovered {
    std::size_t slot;
    Record record;
  };

  // Opens (creating or recovering) the table at `path` with `slots` slots. An existing table of another
  // size keeps its size until it is opened with nothing to recover. A file that is not a table (torn
  // while being created, or foreign) is started afresh. Throws std::runtime_error (naming the path) when
  // it cannot, or when another process holds it.
  InFlight(const std::string& path, std::size_t slots);
  ~InFlight();
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

  // Claims a free slot and writes `r` into it; an empty Entry when every slot is taken.
  Entry open(const Record& r) noexcept;
  // Writes `final_record` into the slot, marked final, so that a crash from now on recovers the record
  // itself. Call before pushing it to the ring, then close().
  void finish(Entry& e, const Record& final_record) noexcept;
  // Frees the slot; `e` becomes empty.
  void close(Entry& e) noexcept;

  // Rows for the slots a previous process left claimed, found when the file was opened: the final record
  // where one was written, else the snapshot as `interrupted` with estimated tokens. Slots whose bytes
  // are not a record are freed at once and only counted.
  const std::vector<Recovered>& recovered() const noexcept { return recovered_; }
  std::size_t unreadable() const noexcept { return unreadable_; }
  // Frees the slot of recovered()[i]: call once its record is safe in the ring.
  void release_recovered(std::size_t i) noexcept;

  std::size_t capacity() const noexcept { return count_; }
  // Slots claimed now (approximate while requests run).
  std::size_t in_use() const noexcept { return in_use_.load(std::memory_order_relaxed); }
  const std::string& path() const noexcept { return path_; }

 private:
  struct Header;
  void map(std::size_t slots, bool create);
  void unmap() noexcept;
  void initialize();
  void recover();
  void free_slot(Slot& s) noexcept;

  std::string path_;
  MappedFile file_;
  std::size_t count_ = 0;
  Header* header_ = nullptr;
  Slot* slots_ = nullptr;
  std::atomic<std::size_t> in_use_{0};
  std::atomic<std::size_t> next_{0};  // where the next claim starts looking, so claims spread
  std::vector<Recovered> recovered_;
  std::size_t unreadable_ = 0;
};

// The row for a request a dead process left open, from its last snapshot: outcome `interrupted`,
// tokens estimated (the prompt estimate and the completion seen so far, unless the snapshot already
// had larger counts from the upstream), duration up to the last sign of progress. Pure.
Record interrupted_record(Record last, std::int64_t prompt_tokens, std::int64_t completion_tokens,
                          std::int64_t last_seen_us);

// Start-up hand-over: pushes each row `table` recovered into `ring` and frees its slot, skipping rows
// whose request_id the ring already recovered (a crash after an earlier hand-over pushed them but
// before it freed their slots). A row the ring has no room for keeps its slot, for the next start.
struct HandOver {
  std::size_t queued = 0;      // pushed to the ring now
  std::size_t duplicates = 0;  // already in the ring
  std::size_t kept = 0;        // the ring was full
};
HandOver recover_into(InFlight& table, Ring& ring);

}  // namespace lagoon::usage
