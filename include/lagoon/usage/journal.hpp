// Journal: where usage records wait on disk while Postgres cannot take them, and where records
// Postgres refuses (dead letters) are kept for an operator.
//
// Spill files `spill-<n>.jsonl` hold one JSON record per line; every append is fsynced before the
// caller frees the records elsewhere. Replay reads the oldest file, hands its records to the caller in
// batches, and deletes the file only after every batch was committed, so a crash during replay replays
// again (harmless: writes are idempotent on request_id). A torn last line (a crash mid-append) is
// skipped: its records were not yet freed from the ring, which replays them itself.
// `dead-letter.jsonl` gets {"record":…, "error":…} lines.
//
// Thread-safety: none; used by the flusher thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "lagoon/usage/record.hpp"

namespace lagoon::usage {

class Journal {
 public:
  // Creates `dir` if needed. Throws std::runtime_error naming the directory when it cannot.
  explicit Journal(std::string dir, std::uint64_t rotate_bytes = 64ull << 20);

  // Appends and fsyncs. Throws std::runtime_error on I/O failure (then nothing may be freed).
  void append(std::span<const Record> records);

  // True while spill files exist.
  bool pending() const noexcept { return !files_.empty(); }
  std::uint64_t bytes() const noexcept { return bytes_; }

  // Replays the oldest spill file: `commit` is called with batches of at most `batch` records and
  // must throw if it could not commit them; the file is deleted when all its batches were committed.
  // Returns the number of records replayed (0 when nothing is pending).
  std::size_t replay_oldest(std::size_t batch, const std::function<void(std::span<const Record>)>& commit);

  void dead_letter(const Record& r, const std::string& error);

  const std::string& dir() const noexcept { return dir_; }

 private:
  void scan();
  std::string next_file_name();

  std::string dir_;
  std::uint64_t rotate_bytes_;
  std::vector<std::string> files_;  // oldest first; the last one is appended to
  std::uint64_t next_index_ = 0;
  std::uint64_t bytes_ = 0;
  std::uint64_t current_bytes_ = 0;
};

}  // namespace lagoon::usage
