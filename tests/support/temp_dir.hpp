// TempDir: a fresh directory under the system's temporary directory, removed with everything in it when
// the object ends. For tests of the parts that keep files (ring, journal, pipeline, usage directories).
// Header-only, no dependencies: unit and integration tests both use it.
#pragma once

#include <filesystem>
#include <random>
#include <string>

namespace lagoon::test {

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("lagoon-test-" + std::to_string(rd()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace lagoon::test
