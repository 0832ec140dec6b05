// MappedFile: a file of this process's alone (flock), mapped shared, so that what is written into the
// mapping outlives a crash of the process: the kernel keeps a shared file mapping's pages. The Ring and
// the InFlight table are each one; they lay out their own header and slots in it.
// Errors throw std::runtime_error as "<what> <path>: <step>: <errno text>".
// Thread-safety: none for open/map/unmap (the owner's constructor and destructor); the mapped bytes are
// the owner's to synchronise.
#pragma once

#include <cstddef>
#include <string>

namespace lagoon::usage {

class MappedFile {
 public:
  // Opens (creating, mode 0600) and locks `path`; `what` names the file in errors ("usage ring").
  MappedFile(std::string path, std::string what);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // The file's size now.
  std::size_t size() const;
  // Reads `n` bytes at `offset` into `out`; false if the file holds fewer.
  bool read_at(void* out, std::size_t n, std::size_t offset) const;

  enum class Sizing {
    keep,         // map the file as it is
    resize,       // set its size to `bytes` first, keeping what it holds
    cut_and_size  // cut it to nothing, then to `bytes`: every byte reads as zero, untouched by this process
  };
  // Maps the first `bytes` of the file (replacing an earlier mapping) and returns them.
  std::byte* map(std::size_t bytes, Sizing sizing);
  void unmap() noexcept;

 private:
  [[noreturn]] void fail(const std::string& step) const;

  std::string path_;
  std::string what_;
  int fd_ = -1;
  void* base_ = nullptr;
  std::size_t mapped_bytes_ = 0;
};

}  // namespace lagoon::usage
