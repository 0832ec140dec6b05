// Ring: the bounded queue between request handlers and the usage flusher, kept in a memory-mapped file
// so that a record is durable the moment try_push() returns: the kernel keeps the pages of a shared file
// mapping when the process dies, even by SIGKILL, and the next start finds and replays them.
//
// A fixed number of fixed-size slots, each with a sequence word (Vyukov's bounded MPMC queue, with one
// consumer): producers claim a position with one CAS, copy the record in and publish it with a release
// store — no lock, no allocation, no system call. The consumer reads published slots in order but
// frees them only with release(), after their records are safely in Postgres or the journal, so a
// crash between reading and writing loses nothing. A power failure can lose records the kernel had not
// yet written back; process crashes cannot.
//
// The file is locked (flock) so two processes cannot share it.
// Thread-safety: try_push() from any number of threads; peek(), release() and recovered() from one
// consumer thread only.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lagoon/usage/mapped_file.hpp"
#include "lagoon/usage/record.hpp"

namespace lagoon::usage {

class Ring {
 public:
  // Opens (creating or recovering) the ring file at `path` with `capacity` slots (rounded up to a power
  // of two). An existing ring of another capacity keeps its size until it is opened with nothing to
  // recover. Throws
  // std::runtime_error (naming the path) when it cannot, or when another process holds it.
  Ring(const std::string& path, std::size_t capacity);
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // False when full: the caller counts the record as dropped.
  bool try_push(const Record& r) noexcept;

  // Records found published but not released when the file was opened (a previous process ended
  // without flushing them). Call release_recovered() once they are safe elsewhere, before any release().
  // Producers may push meanwhile: the ring keeps its place after the recovered range.
  const std::vector<Record>& recovered() const noexcept { return recovered_; }
  void release_recovered();

  // Appends up to `max` published records, in order, to `out`; returns how many.
  std::size_t peek(std::vector<Record>& out, std::size_t max);
  // Frees the oldest `n` peeked records' slots for reuse.
  void release(std::size_t n);
  // Forgets what was peeked but not released, so the next peek() returns it again.
  void rewind() noexcept;

  std::size_t capacity() const noexcept { return capacity_; }
  // Published or claimed but not yet released (approximate while producers run).
  std::size_t depth() const noexcept;
  const std::string& path() const noexcept { return path_; }

 private:
  struct Header;
  struct Slot;
  void initialize();
  void map(std::size_t capacity, bool create);
  void unmap() noexcept;

  std::string path_;
  MappedFile file_;
  std::size_t capacity_ = 0;
  std::size_t mask_ = 0;
  Header* header_ = nullptr;
  Slot* slots_ = nullptr;
  std::uint64_t read_pos_ = 0;  // consumer only: next position to peek
  std::vector<Record> recovered_;
  std::uint64_t recovered_end_ = 0;  // positions below it were claimed by the previous process
};

}  // namespace lagoon::usage
