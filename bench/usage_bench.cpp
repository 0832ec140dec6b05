// lagoon-usage-bench: how fast usage records reach Postgres, and what a push costs the request path.
//
//   lagoon-usage-bench --key-id K --user-id U --dir DIR
// with LAGOON_DATABASE_URL set. Writes batches of 1, 100, 1,000 and 10,000 records with COPY and with
// a multi-row INSERT (usage::write_batch, the flusher's own code), then times Ring::try_push from one
// and from two threads. Prints one JSON line per measurement.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <pqxx/pqxx>

#include "lagoon/config/config.hpp"
#include "lagoon/db/connection.hpp"
#include "lagoon/usage/ring.hpp"
#include "lagoon/usage/writer.hpp"

using namespace lagoon;
using Clock = std::chrono::steady_clock;

namespace {

usage::Record record(std::uint64_t i, std::int64_t key_id, std::int64_t user_id) {
  usage::Record r;
  r.request_id = "bench-" + std::to_string(i);
  r.api_key_id = key_id;
  r.user_id = user_id;
  r.model = "llama-3.3-70b";
  r.stream = true;
  r.status_code = 200;
  r.outcome = "ok";
  r.prompt_tokens = 120;
  r.completion_tokens = 480;
  r.total_tokens = 600;
  r.started_at_us = 1'764'000'000'000'000 + static_cast<std::int64_t>(i);
  r.duration_ms = 2012.5;
  r.ttfb_ms = 180.25;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> opt;
  for (int i = 1; i + 1 < argc; i += 2) opt[std::string(argv[i]).substr(2)] = argv[i + 1];
  const auto cfg = config::load("", config::process_environment(), 2);
  const std::int64_t key_id = std::stoll(opt.at("key-id")), user_id = std::stoll(opt.at("user-id"));
  auto conn = db::connect(cfg);
  std::uint64_t next_id = 0;

  // --batches 1,100,… --methods copy,insert --records N (per batch size) --push 0|1: what `make bench`
  // needs (P5: batches of 1,000 with COPY) without the rest.
  auto list = [&](const char* name, const std::string& fallback) {
    std::vector<std::string> out;
    std::string v = opt.count(name) ? opt.at(name) : fallback;
    for (std::size_t at = 0; at <= v.size();) {
      const auto comma = std::min(v.find(',', at), v.size());
      out.push_back(v.substr(at, comma - at));
      at = comma + 1;
    }
    return out;
  };
  for (const auto& batch_text : list("batches", "1,100,1000,10000")) {
    const std::size_t batch = std::stoul(batch_text);
    for (const auto& method_name : list("methods", "copy,insert")) {
      const auto method = method_name == "copy" ? usage::WriteMethod::copy : usage::WriteMethod::insert;
      const std::size_t total = opt.count("records") ? std::stoul(opt.at("records"))
                                : batch == 1                ? 2000
                                : batch == 100              ? 50000
                                                            : 200000;
      {
        pqxx::nontransaction n(*conn);
        n.exec("TRUNCATE usage_records");
      }
      std::vector<usage::Record> records;
      const auto t0 = Clock::now();
      for (std::size_t done = 0; done < total; done += batch) {
        records.clear();
        for (std::size_t i = 0; i < batch; ++i) records.push_back(record(next_id++, key_id, user_id));
        usage::write_batch(*conn, records, method);
      }
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      std::printf("{\"kind\":\"flush\",\"method\":\"%s\",\"batch\":%zu,\"records\":%zu,\"seconds\":%.3f,\"rps\":%.0f}\n",
                  method == usage::WriteMethod::copy ? "copy" : "insert", batch, total, s, total / s);
      std::fflush(stdout);
    }
  }

  if (opt.count("push") && opt.at("push") == "0") return 0;
  const std::string dir = opt.at("dir");
  std::filesystem::create_directories(dir);
  for (unsigned threads : {1u, 2u}) {
    usage::Ring ring(dir + "/bench-" + std::to_string(threads) + ".ring", 65536);
    const usage::Record r = record(0, key_id, user_id);
    std::vector<usage::Record> sink;
    double seconds = 0;
    std::size_t pushes = 0;
    for (int round = 0; round < 16; ++round) {
      const std::size_t each = 60000 / threads;
      std::vector<std::thread> ts;
      const auto t0 = Clock::now();
      for (unsigned t = 0; t < threads; ++t)
        ts.emplace_back([&] {
          for (std::size_t i = 0; i < each; ++i)
            if (!ring.try_push(r)) std::abort();
        });
      for (auto& t : ts) t.join();
      seconds += std::chrono::duration<double>(Clock::now() - t0).count();
      pushes += each * threads;
      std::size_t n;
      while ((n = ring.peek(sink, 65536)) > 0) {
        ring.release(n);
        sink.clear();
      }
    }
    std::printf("{\"kind\":\"push\",\"threads\":%u,\"pushes\":%zu,\"ns_per_push\":%.1f}\n", threads, pushes,
                seconds * 1e9 / static_cast<double>(pushes) * threads);
  }
  return 0;
}
