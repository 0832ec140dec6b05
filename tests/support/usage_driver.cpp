// lagoon_usage_driver: the usage pipeline in a process of its own, fed by synthetic producers, so tests
// can SIGKILL or SIGTERM it mid-flush and check what reached Postgres.
//
//   lagoon_usage_driver produce --records N --key-id K --user-id U [--threads T] [--prefix P] [--counter FILE]
//       Pushes N records (request ids P-0 … P-(N-1)), never overrunning the queue; with one thread,
//       FILE (8 bytes, memory-mapped so it survives SIGKILL) holds how many pushes were acknowledged.
//       Then waits for SIGTERM/SIGINT, stops the pipeline (final flush) and exits 0.
//   lagoon_usage_driver drain
//       Starts the pipeline (replaying what a previous process left), waits until nothing is queued or
//       journalled, stops, exits 0.
// Configuration comes from the LAGOON_* environment, as for `lagoon serve`.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lagoon/config/config.hpp"
#include "lagoon/db/pool.hpp"
#include "lagoon/log/log.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/usage/pipeline.hpp"

using namespace lagoon;

namespace {

std::atomic<std::uint64_t>* map_counter(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0600);
  if (fd < 0 || ::ftruncate(fd, 8) != 0) throw std::runtime_error("cannot create " + path);
  void* p = ::mmap(nullptr, 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) throw std::runtime_error("cannot map " + path);
  return static_cast<std::atomic<std::uint64_t>*>(p);
}

usage::Record record(const std::string& prefix, std::uint64_t i, std::int64_t key_id, std::int64_t user_id) {
  usage::Record r;
  r.request_id = prefix + "-" + std::to_string(i);
  r.api_key_id = key_id;
  r.user_id = user_id;
  r.model = "llama-3.3-70b";
  r.status_code = 200;
  r.outcome = "ok";
  r.prompt_tokens = 10;
  r.completion_tokens = 20;
  r.total_tokens = 30;
  r.started_at_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  r.duration_ms = 1.5;
  return r;
}

// SIGTERM and SIGINT: taken by sigwait in main only, so blocked in every thread.
sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

int wait_for_signal() {
  const sigset_t set = stop_signals();
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

// `produce`: N records from T threads, paced so the queue never overruns; then waits for a stop signal
// and stops the pipeline (final flush).
int produce(usage::Pipeline& pipeline, std::map<std::string, std::string>& opt) {
  const std::uint64_t n = std::stoull(opt.at("records"));
  const unsigned threads = opt.count("threads") ? std::stoul(opt["threads"]) : 1;
  const std::string prefix = opt.count("prefix") ? opt["prefix"] : "rec";
  const std::int64_t key_id = std::stoll(opt.at("key-id")), user_id = std::stoll(opt.at("user-id"));
  std::atomic<std::uint64_t>* acked = opt.count("counter") ? map_counter(opt["counter"]) : nullptr;
  std::vector<std::thread> producers;
  for (unsigned t = 0; t < threads; ++t)
    producers.emplace_back([&, t] {
      for (std::uint64_t i = t; i < n; i += threads) {
        while (pipeline.queued() * 4 >= pipeline.capacity() * 3)
          std::this_thread::sleep_for(std::chrono::microseconds(200));
        if (!pipeline.push(record(prefix, i, key_id, user_id))) std::abort();  // never: we pace
        if (acked) acked->store(i + 1, std::memory_order_release);
      }
    });
  for (auto& p : producers) p.join();
  std::cout << "{\"produced\":" << n << "}" << std::endl;
  wait_for_signal();
  pipeline.stop(std::chrono::seconds(5));
  return 0;
}

// `drain`: waits (60 s at most) until nothing is queued or journalled; 0 if so, 1 if not.
int drain(usage::Pipeline& pipeline, const config::Config& cfg) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!pipeline.idle() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // idle() reads the journal state of the flusher's last round: let one more round confirm it.
  std::this_thread::sleep_for(cfg.usage_flush_interval * 2);
  const int code = pipeline.idle() ? 0 : 1;
  pipeline.stop(std::chrono::seconds(5));
  return code;
}

void print_counters(metrics::Registry& registry) {
  std::cout << "{\"flushed\":" << registry.counter("lagoon_usage_flushed_total", "").value()
            << ",\"recovered\":" << registry.counter("lagoon_usage_recovered_total", "").value()
            << ",\"replayed\":" << registry.counter("lagoon_usage_replayed_total", "").value()
            << ",\"journalled\":" << registry.counter("lagoon_usage_journalled_total", "").value()
            << ",\"dropped\":" << registry.counter("lagoon_usage_dropped_total", "").value() << "}" << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: lagoon_usage_driver produce|drain [options]\n";
    return 2;
  }
  const std::string mode = argv[1];
  std::map<std::string, std::string> opt;
  for (int i = 2; i + 1 < argc; i += 2) opt[std::string(argv[i]).substr(2)] = argv[i + 1];

  // Signals are taken by sigwait in main only: block them before any thread starts.
  const sigset_t set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  const auto cfg = config::load("", config::process_environment(), 2);
  log::init(cfg.log_level);
  metrics::Registry registry;
  int code = 0;
  {
    db::Pool pool(cfg, registry);
    usage::Pipeline pipeline(cfg, pool, registry);
    pipeline.start();
    if (mode == "produce") {
      code = produce(pipeline, opt);
    } else if (mode == "drain") {
      code = drain(pipeline, cfg);
    } else {
      std::cerr << "unknown mode " << mode << "\n";
      code = 2;
    }
  }
  print_counters(registry);
  log::shutdown();
  return code;
}
