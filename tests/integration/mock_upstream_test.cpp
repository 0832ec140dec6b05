// lagoon-mock-upstream speaks OpenAI's wire format, as later tests and benchmarks rely on.
#include <gtest/gtest.h>

#include <thread>

#include <nlohmann/json.hpp>

#include "support/environment.hpp"

using namespace lagoon::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

class Mock : public ::testing::Test {
 protected:
  void SetUp() override {
    port = free_port();
    process = std::make_unique<Process>(
        std::vector<std::string>{LAGOON_MOCK_BINARY, "--listen", "127.0.0.1:" + std::to_string(port), "--api-key",
                                 "upstream-secret"},
        Env{}, "/tmp/lagoon-test-mock-" + std::to_string(port) + ".log");
    for (int i = 0; i < 200; ++i) {
      try {
        if (request(port, "GET", "/mock/stats")) return;
      } catch (...) {
      }
      std::this_thread::sleep_for(10ms);
    }
    FAIL() << "mock did not start: " << process->output();
  }
  std::optional<HttpResponse> chat(const std::string& body, const std::string& headers = "") {
    return request(port, "POST", "/api/v1/chat/completions", body,
                   "Authorization: Bearer upstream-secret\r\nContent-Type: application/json\r\n" + headers);
  }
  unsigned short port = 0;
  std::unique_ptr<Process> process;
};

}  // namespace

TEST_F(Mock, NonStreamCompletionHasContentAndUsage) {
  auto r = chat(R"({"model":"llama-3.3-70b","messages":[{"role":"user","content":"hi"}]})", "x-mock-chunks: 3\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  auto j = json::parse(r->body);
  EXPECT_EQ(j["model"], "llama-3.3-70b");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "tok0 tok1 tok2 ");
  EXPECT_EQ(j["usage"]["completion_tokens"], 3);
}

TEST_F(Mock, StreamEndsWithUsageChunkAndDoneWhenAsked) {
  auto r = chat(R"({"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true}})",
                "x-mock-chunks: 2\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("content-type"), "text/event-stream");
  std::vector<std::string> events;
  for (std::size_t pos = 0; pos < r->body.size();) {
    auto end = r->body.find("\n\n", pos);
    ASSERT_NE(end, std::string::npos);
    events.push_back(r->body.substr(pos, end - pos));
    pos = end + 2;
  }
  ASSERT_EQ(events.size(), 6u);  // role, 2 content, finish, usage, [DONE]
  EXPECT_EQ(events.back(), "data: [DONE]");
  auto usage = json::parse(events[4].substr(6));
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 2);
}

TEST_F(Mock, StreamWithoutIncludeUsageHasNoUsageChunk) {
  auto r = chat(R"({"model":"m","messages":[],"stream":true})", "x-mock-chunks: 2\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body.find("\"usage\""), std::string::npos);
  EXPECT_NE(r->body.find("data: [DONE]\n\n"), std::string::npos);
}

TEST_F(Mock, WrongCredentialIs401) {
  auto r = request(port, "POST", "/api/v1/chat/completions", R"({"model":"m"})", "Authorization: Bearer nope\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(json::parse(r->body)["error"]["type"], "authentication_error");
}

TEST_F(Mock, RequestedErrorStatusAndRetryAfter) {
  auto r = chat(R"({"model":"m","messages":[]})", "x-mock-status: 429\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 429);
  EXPECT_EQ(r->header("retry-after"), "1");
}

TEST_F(Mock, ModelsListHasTheOpenAiShape) {
  auto r = request(port, "GET", "/v1/models", "", "Authorization: Bearer upstream-secret\r\n");
  ASSERT_TRUE(r);
  auto j = json::parse(r->body);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["data"][0]["object"], "model");
}

TEST_F(Mock, FirstByteDelayIsHonoured) {
  const auto t0 = std::chrono::steady_clock::now();
  auto r = chat(R"({"model":"m","messages":[]})", "x-mock-first-byte-ms: 300\r\n");
  ASSERT_TRUE(r);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 290ms);
}

TEST_F(Mock, ResetMidStreamCutsTheConnection) {
  Connection c(port);
  std::string body = R"({"model":"m","messages":[],"stream":true})";
  c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer upstream-secret\r\n"
         "x-mock-chunks: 10\r\nx-mock-reset-after: 2\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_FALSE(c.read_response(3s).has_value());  // the chunked body never completes
  EXPECT_TRUE(c.closed_by_peer(1s));
  auto stats = json::parse(request(port, "GET", "/mock/stats")->body);
  EXPECT_EQ(stats["resets"], 1);
}

TEST_F(Mock, StalledStreamIsSeenClosedByTheClient) {
  {
    Connection c(port);
    std::string body = R"({"model":"m","messages":[],"stream":true})";
    c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer upstream-secret\r\n"
           "x-mock-stall: body\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    EXPECT_FALSE(c.read_response(300ms).has_value());
  }
  for (int i = 0; i < 100; ++i) {
    auto stats = json::parse(request(port, "GET", "/mock/stats")->body);
    if (stats["client_disconnects"] == 1) return;
    std::this_thread::sleep_for(10ms);
  }
  FAIL() << "the mock did not notice the client leaving";
}

TEST_F(Mock, RecordsTheLastRequestWhenAsked) {
  chat(R"({"model":"m","messages":[],"venice_parameters":{"x":1}})", "x-mock-record: 1\r\n");
  auto last = json::parse(request(port, "GET", "/mock/last-request")->body);
  EXPECT_EQ(last["body"], R"({"model":"m","messages":[],"venice_parameters":{"x":1}})");
  EXPECT_EQ(last["headers"]["Authorization"], "Bearer upstream-secret");
}
