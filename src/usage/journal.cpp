#include "lagoon/usage/journal.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "lagoon/log/log.hpp"

namespace lagoon::usage {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw std::runtime_error("usage journal: " + what + " " + path + ": " + std::strerror(errno));
}

// A new or removed directory entry is durable only once the directory itself is synced.
void sync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail("cannot open", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) fail("cannot sync", dir);
}

void append_durably(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) fail("cannot open", path);
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      errno = e;
      fail("cannot write", path);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int e = errno;
    ::close(fd);
    errno = e;
    fail("cannot sync", path);
  }
  ::close(fd);
}

}  // namespace

Journal::Journal(std::string dir, std::uint64_t rotate_bytes) : dir_(std::move(dir)), rotate_bytes_(rotate_bytes) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw std::runtime_error("usage journal: cannot create " + dir_ + ": " + ec.message());
  scan();
}

void Journal::scan() {
  files_.clear();
  bytes_ = 0;
  for (const auto& e : fs::directory_iterator(dir_)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("spill-", 0) != 0 || e.path().extension() != ".jsonl") continue;
    files_.push_back(e.path().string());
    bytes_ += e.file_size();
    next_index_ = std::max<std::uint64_t>(next_index_, std::strtoull(name.c_str() + 6, nullptr, 10) + 1);
  }
  std::sort(files_.begin(), files_.end());
  current_bytes_ = files_.empty() ? 0 : fs::file_size(files_.back());
}

std::string Journal::next_file_name() {
  char name[64];
  std::snprintf(name, sizeof name, "spill-%020llu.jsonl", static_cast<unsigned long long>(next_index_++));
  return (fs::path(dir_) / name).string();
}

void Journal::append(std::span<const Record> records) {
  if (records.empty()) return;
  std::string data;
  for (const auto& r : records) {
    // A record Postgres will refuse for bad UTF-8 must still reach the journal and, from there, the
    // dead-letter file: never let its bytes stop the whole queue.
    data += to_json(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    data += '\n';
  }
  const bool fresh = files_.empty() || current_bytes_ >= rotate_bytes_;
  const std::string path = fresh ? next_file_name() : files_.back();
  append_durably(path, data);
  if (fresh) {
    sync_dir(dir_);
    files_.push_back(path);
    current_bytes_ = 0;
  }
  current_bytes_ += data.size();
  bytes_ += data.size();
}

std::size_t Journal::replay_oldest(std::size_t batch, const std::function<void(std::span<const Record>)>& commit) {
  if (files_.empty()) return 0;
  const std::string path = files_.front();
  std::ifstream in(path);
  if (!in) fail("cannot read", path);
  std::vector<Record> records;
  std::size_t replayed = 0;
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    try {
      if (j.is_discarded()) throw std::runtime_error("not JSON");
      records.push_back(from_json(j));
    } catch (const std::exception& e) {
      // Only a crash in the middle of an append leaves a bad line, and only as the last one.
      log::warn("skipping a torn usage journal line", {{"file", path}, {"line", line_no}, {"error", e.what()}});
      continue;
    }
    if (records.size() >= batch) {
      commit(records);
      replayed += records.size();
      records.clear();
    }
  }
  if (!records.empty()) {
    commit(records);
    replayed += records.size();
  }
  const auto size = fs::file_size(path);
  if (::unlink(path.c_str()) != 0) fail("cannot remove", path);
  sync_dir(dir_);
  files_.erase(files_.begin());
  bytes_ -= std::min<std::uint64_t>(bytes_, size);
  if (files_.empty()) current_bytes_ = 0;
  return replayed;
}

void Journal::dead_letter(const Record& r, const std::string& error) {
  const nlohmann::json line{{"record", to_json(r)}, {"error", error}};
  append_durably((fs::path(dir_) / "dead-letter.jsonl").string(),
                 line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

}  // namespace lagoon::usage
