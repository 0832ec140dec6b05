// SIGKILL with streams open on the real binary: the requests a killed process was answering become
// usage rows at the next start (outcome `interrupted`, tokens estimated), exactly one per request.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <set>
#include <sstream>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support/environment.hpp"
#include "support/usage_support.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// A chat stream on a raw socket, read only as far as the test needs: the client of a stream that never
// ends, which Connection::read_response (whole responses only) cannot be.
class OpenStream {
 public:
  OpenStream(unsigned short port, const std::string& request) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
      throw std::runtime_error("cannot send the request");
  }
  ~OpenStream() {
    if (fd_ >= 0) ::close(fd_);
  }
  OpenStream(const OpenStream&) = delete;
  OpenStream& operator=(const OpenStream&) = delete;

  // Reads until the head and the first event have arrived; false at `deadline` or on close.
  bool first_event(Clock::time_point deadline) {
    for (;;) {
      const auto head_end = got_.find("\r\n\r\n");
      if (head_end != std::string::npos && got_.find("data: ", head_end) != std::string::npos) return true;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      pollfd p{fd_, POLLIN, 0};
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
      char buf[4096];
      const auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return false;
      got_.append(buf, static_cast<std::size_t>(n));
    }
  }
  std::string request_id() const {
    std::istringstream in(got_.substr(0, got_.find("\r\n\r\n")));
    for (std::string line; std::getline(in, line);) {
      std::string lower = line;
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      if (lower.rfind("x-request-id:", 0) == 0) {
        std::string v = line.substr(13);
        v.erase(0, v.find_first_not_of(' '));
        v.erase(v.find_last_not_of("\r ") + 1);
        return v;
      }
    }
    return "";
  }
  const std::string& received() const { return got_; }

 private:
  int fd_ = -1;
  std::string got_;
};

// `n` streams opened on `port` with `request`, each read up to its first event (30 s for all); their
// request ids go to `request_ids`. The streams stay open as long as the caller keeps `streams`.
void open_streams(unsigned short port, const std::string& request, int n,
                  std::vector<std::unique_ptr<OpenStream>>& streams, std::set<std::string>& request_ids) {
  for (int i = 0; i < n; ++i) streams.push_back(std::make_unique<OpenStream>(port, request));
  const auto deadline = Clock::now() + 30s;
  for (auto& st : streams) {
    ASSERT_TRUE(st->first_event(deadline)) << st->received();
    request_ids.insert(st->request_id());
  }
}

std::string comma_separated(const std::set<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : ",") + id;
  return out;
}

}  // namespace

TEST(UsageSigkill, FiftyStreamsOpenAtAKillLeaveExactlyFiftyInterruptedRowsAfterTheRestart) {
  TestDatabase db;
  Env env = lagoon_env(db);
  ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0);
  const std::string key = create_key(env).second;
  MockUpstream mock;
  TempDir dir;
  Env e = mock.with(env);
  e["LAGOON_USAGE_DIR"] = (dir.path() / "usage").string();
  e["LAGOON_UPSTREAM_GAP_TIMEOUT_MS"] = "600000";  // the stalled streams stay open until the kill
  auto rows = [&] { return std::stoll(db.scalar("SELECT count(*) FROM usage_records")); };

  constexpr int kStreams = 50;
  // The upstream sends the head and one event, then nothing: streams that are open, streaming, and owe tokens.
  const std::string body =
      R"({"model":"m","messages":[{"role":"user","content":"tell me a long story please"}],"stream":true,)"
      R"("x_mock":{"stall":"body"}})";
  std::set<std::string> request_ids;
  {
    LagoonServer s(e);
    std::vector<std::unique_ptr<OpenStream>> streams;
    ASSERT_NO_FATAL_FAILURE(open_streams(s.port(), chat_request_bytes(key, body), kStreams, streams, request_ids));
    ASSERT_EQ(request_ids.size(), static_cast<std::size_t>(kStreams));
    ASSERT_FALSE(request_ids.contains(""));
    ASSERT_TRUE(wait_until([&] { return s.metric("lagoon_http_streams_active") >= kStreams; }, 10s));
    EXPECT_EQ(rows(), 0);  // no request has ended: nothing reached the ring yet

    s.process().signal(SIGKILL);
    ASSERT_TRUE(s.process().wait(10s));
  }
  EXPECT_EQ(rows(), 0);

  {
    LagoonServer s(e);
    ASSERT_TRUE(wait_until([&] { return rows() >= kStreams; }, 30s)) << "rows " << rows();
    // Past the expected count: once the queue is empty, anything more this start would write is written.
    EXPECT_TRUE(wait_until([&] { return s.metric("lagoon_usage_queue_depth") == 0; }, 10s));
    EXPECT_EQ(s.metric("lagoon_usage_interrupted_total"), kStreams);
    EXPECT_EQ(rows(), kStreams);
    std::string ids_in_db = db.scalar("SELECT string_agg(request_id, ',' ORDER BY request_id) FROM usage_records");
    EXPECT_EQ(ids_in_db, comma_separated(request_ids));
    EXPECT_EQ(db.scalar("SELECT count(*) FROM usage_records WHERE outcome = 'interrupted' AND tokens_estimated "
                        "AND stream AND model = 'm' AND session_id IS NOT NULL AND status_code = 200 "
                        "AND prompt_tokens > 0 AND completion_tokens > 0 "
                        "AND total_tokens = prompt_tokens + completion_tokens"),
              std::to_string(kStreams));

    // Killed again: what was recovered is not recovered a second time.
    s.process().signal(SIGKILL);
    ASSERT_TRUE(s.process().wait(10s));
  }
  LagoonServer s(e);
  EXPECT_EQ(s.metric("lagoon_usage_interrupted_total"), 0);
  EXPECT_EQ(rows(), kStreams);
}
