// SIGTERM under load on the real binary: 200 open streams and a steady flow of short requests.
// Streams that can finish within the drain timeout finish; the rest end with the gateway's error
// event; no short request that Lagoon accepted fails; every answered request has its usage row.
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <cstring>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/environment.hpp"
#include "support/usage_support.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::string last_event(const std::string& body) {
  const auto end = body.rfind("\n\n");
  if (end == std::string::npos) return "";
  const auto start = body.rfind("data: ", end);
  return start == std::string::npos ? "" : body.substr(start + 6, end - start - 6);
}

// One thread a stream, each writing its answer into `streams[i]`: odd i ask for ~1 s (5 events 200 ms
// apart), even i for ~30 s (100 events 300 ms apart).
std::vector<std::thread> open_streams(unsigned short port, const std::string& auth,
                                      std::vector<std::optional<HttpResponse>>& streams) {
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < streams.size(); ++i)
    threads.emplace_back([&streams, &auth, port, i] {
      const std::string plan = i % 2 ? R"({"chunks":5,"gap-ms":200})" : R"({"chunks":100,"gap-ms":300})";
      for (int attempt = 0; attempt < 20 && !streams[i]; ++attempt) {
        try {
          streams[i] = request(port, "POST", "/api/v1/chat/completions",
                               R"({"model":"m","messages":[],"stream":true,"x_mock":)" + plan + "}", auth);
          break;
        } catch (const std::exception& e) {  // connect refused while 200 connect at once: try again
          std::this_thread::sleep_for(20ms);
        }
      }
    });
  return threads;
}

// Two clients sending short chat requests back to back until `stop`: answered with 200 (`ok`), not
// accepted (refused or reset before a response), or failed with another answer (`failures`).
struct ShortRequests {
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, not_accepted{0};
  std::mutex failures_mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;

  void start(unsigned short port, const std::string& auth) {
    for (int t = 0; t < 2; ++t)
      threads.emplace_back([this, port, &auth] {
        while (!stop) {
          std::optional<HttpResponse> r;
          try {
            r = request(port, "POST", "/api/v1/chat/completions", R"({"model":"m","messages":[]})", auth);
          } catch (const std::exception&) {
          }
          if (!r) {
            ++not_accepted;  // refused, or reset before a response: Lagoon had stopped accepting
            std::this_thread::sleep_for(5ms);
          } else if (r->status == 200) {
            ++ok;
          } else {
            std::lock_guard lock(failures_mutex);
            failures.push_back(std::to_string(r->status) + " " + r->body);
          }
        }
      });
  }
  void stop_and_join() {
    stop = true;
    for (auto& t : threads) t.join();
  }
};

// The short streams (odd i) ended with [DONE]; the long ones (even i) with the gateway's "shutting down"
// error event and no [DONE].
void expect_short_streams_finished_and_long_ones_cut(const std::vector<std::optional<HttpResponse>>& streams) {
  int finished = 0, cut = 0;
  for (std::size_t i = 0; i < streams.size(); ++i) {
    ASSERT_TRUE(streams[i]) << "stream " << i << " got no answer";
    EXPECT_EQ(streams[i]->status, 200);
    const std::string last = last_event(streams[i]->body);
    if (i % 2) {
      EXPECT_EQ(last, "[DONE]") << "short stream " << i;
      finished += last == "[DONE]";
    } else {
      const auto j = json::parse(last, nullptr, false);
      EXPECT_TRUE(j.contains("error")) << "long stream " << i << " ended with: " << last;
      if (j.contains("error")) {
        EXPECT_NE(j["error"]["message"].get<std::string>().find("shutting down"), std::string::npos);
        ++cut;
      }
      EXPECT_EQ(streams[i]->body.find("[DONE]"), std::string::npos);
    }
  }
  EXPECT_EQ(finished, 100);
  EXPECT_EQ(cut, 100);
}

}  // namespace

TEST(Drain, SigtermDuringTwoHundredStreamsAndSteadyShortRequests) {
  TestDatabase db;
  Env env = lagoon_env(db);
  ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0);
  const std::string key = create_key(env).second;
  MockUpstream mock;
  Env e = mock.with(env);
  e["LAGOON_DRAIN_TIMEOUT_MS"] = "3000";
  LagoonServer s(e);
  const std::string auth = "Authorization: Bearer " + key + "\r\nContent-Type: application/json\r\n";

  // 100 streams of ~1 s (finish within the drain) and 100 of ~30 s (cut at its deadline).
  constexpr int kStreams = 200;
  std::vector<std::optional<HttpResponse>> streams(kStreams);
  std::vector<std::thread> stream_threads = open_streams(s.port(), auth, streams);
  ASSERT_TRUE(wait_until([&] { return s.metric("lagoon_http_streams_active") >= kStreams; }, 20s))
      << s.metric("lagoon_http_streams_active");

  ShortRequests short_requests;
  short_requests.start(s.port(), auth);
  std::this_thread::sleep_for(300ms);
  const int ok_before = short_requests.ok.load();
  const auto signalled = Clock::now();
  s.process().signal(SIGTERM);
  const auto code = s.process().wait(15s);
  const auto drain_time = Clock::now() - signalled;
  short_requests.stop_and_join();
  for (auto& t : stream_threads) t.join();

  ASSERT_TRUE(code.has_value()) << "still running 15 s after SIGTERM";
  EXPECT_EQ(*code, 0);
  EXPECT_LT(drain_time, 3s + 2s + 1s) << "drain timeout 3 s plus the 2 s grace for cut requests";
  EXPECT_GT(ok_before, 0);
  const auto& failures = short_requests.failures;
  EXPECT_TRUE(failures.empty()) << failures.size() << " short requests failed, e.g. " << failures.front();
  ASSERT_NO_FATAL_FAILURE(expect_short_streams_finished_and_long_ones_cut(streams));

  // Every answered request left its row, flushed before exit: none more (nothing was dropped after
  // being read, nothing stored twice), none less. The process has exited, so the totals are final; they
  // are the check, since request_id is UNIQUE and a search for repeated ids could never find one.
  const auto rows = std::stoll(db.scalar("SELECT count(*) FROM usage_records"));
  EXPECT_EQ(rows, kStreams + short_requests.ok.load());
  EXPECT_EQ(db.scalar("SELECT count(*) FROM usage_records WHERE outcome = 'shutdown'"), "100");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM usage_records WHERE stream"), std::to_string(kStreams));
}

// Type=notify: systemd hears READY=1 once Lagoon accepts, STOPPING=1 when the drain begins.
TEST(Drain, TellsSystemdWhenReadyAndWhenStopping) {
  TestDatabase db;
  Env env = lagoon_env(db);
  ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0);
  const std::string path = "/tmp/lagoon-notify-" + std::to_string(::getpid()) + ".sock";
  ::unlink(path.c_str());
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  auto next = [&] {
    char buf[512];
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  };
  env["NOTIFY_SOCKET"] = path;
  LagoonServer s(env);
  const std::string ready = next();
  EXPECT_EQ(ready.rfind("READY=1", 0), 0u) << ready;
  s.process().signal(SIGTERM);
  const std::string stopping = next();
  EXPECT_EQ(stopping.rfind("STOPPING=1", 0), 0u) << stopping;
  EXPECT_EQ(s.process().wait(10s), 0);
  ::close(fd);
  ::unlink(path.c_str());
}
