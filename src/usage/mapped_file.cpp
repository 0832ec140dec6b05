#include "lagoon/usage/mapped_file.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace lagoon::usage {

MappedFile::MappedFile(std::string path, std::string what) : path_(std::move(path)), what_(std::move(what)) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) fail("cannot open");
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd_);
    fd_ = -1;
    errno = EWOULDBLOCK;
    fail("in use by another process (each Lagoon instance needs its own LAGOON_USAGE_DIR)");
  }
}

MappedFile::~MappedFile() {
  unmap();
  if (fd_ >= 0) ::close(fd_);
}

std::size_t MappedFile::size() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) fail("cannot stat");
  return static_cast<std::size_t>(st.st_size);
}

bool MappedFile::read_at(void* out, std::size_t n, std::size_t offset) const {
  return ::pread(fd_, out, n, static_cast<off_t>(offset)) == static_cast<ssize_t>(n);
}

std::byte* MappedFile::map(std::size_t bytes, Sizing sizing) {
  unmap();
  if (sizing == Sizing::cut_and_size && ::ftruncate(fd_, 0) != 0) fail("cannot size");
  if (sizing != Sizing::keep && ::ftruncate(fd_, static_cast<off_t>(bytes)) != 0) fail("cannot size");
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (base == MAP_FAILED) fail("cannot map");
  base_ = base;
  mapped_bytes_ = bytes;
  return static_cast<std::byte*>(base_);
}

void MappedFile::unmap() noexcept {
  if (base_) ::munmap(base_, mapped_bytes_);
  base_ = nullptr;
  mapped_bytes_ = 0;
}

void MappedFile::fail(const std::string& step) const {
  throw std::runtime_error(what_ + " " + path_ + ": " + step + ": " + std::strerror(errno));
}

}  // namespace lagoon::usage
