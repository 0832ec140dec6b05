// Child processes for integration tests: the real lagoon and mock binaries, started with an explicit
// environment, output captured to a file, waited for with a deadline and killed if still running when
// the test ends. Not thread-safe; one owner per Process.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace lagoon::test {

using Env = std::map<std::string, std::string>;

class Process {
 public:
  // argv[0] is the program path. The child gets this process's environment minus every LAGOON_* variable,
  // plus `env`. stdout and stderr go to `output_path`.
  Process(const std::vector<std::string>& argv, const Env& env, const std::string& output_path);
  ~Process();  // SIGKILL if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  void signal(int signo);
  // Exit status (or 128+signal) once the child ended within `timeout`; nullopt if it is still running.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  bool running();
  std::string output() const;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string output_path_;
};

struct RunResult {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs a command to completion (at most `timeout`, then SIGKILL and code -1) capturing stdout and stderr apart.
RunResult run(const std::vector<std::string>& argv, const Env& env,
              std::chrono::milliseconds timeout = std::chrono::seconds(30));

// A TCP port on 127.0.0.1 that was free a moment ago.
unsigned short free_port();

std::string read_file(const std::string& path);

}  // namespace lagoon::test
