// lagoon-mock-upstream speaks Venice's wire format on every endpoint, as later tests and benchmarks rely on.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include <nlohmann/json.hpp>

#include "lagoon/mock/catalog.hpp"
#include "lagoon/mock/media.hpp"
#include "lagoon/mock/responses.hpp"
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
    return post("/api/v1/chat/completions", body, headers);
  }
  std::optional<HttpResponse> post(const std::string& target, const std::string& body,
                                   const std::string& headers = "") {
    return request(port, "POST", target, body,
                   "Authorization: Bearer upstream-secret\r\nContent-Type: application/json\r\n" + headers);
  }
  // A multipart/form-data POST; each part is {name, filename ("" for a field), bytes}.
  std::optional<HttpResponse> form(const std::string& target,
                                   const std::vector<std::tuple<std::string, std::string, std::string>>& parts) {
    std::string body;
    for (const auto& [name, filename, bytes] : parts) {
      body += "--b0undary\r\nContent-Disposition: form-data; name=\"" + name + "\"";
      if (!filename.empty()) body += "; filename=\"" + filename + "\"\r\nContent-Type: application/octet-stream";
      body += "\r\n\r\n" + bytes + "\r\n";
    }
    body += "--b0undary--\r\n";
    return request(port, "POST", target, body,
                   "Authorization: Bearer upstream-secret\r\nContent-Type: multipart/form-data; boundary=b0undary\r\n");
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

// ---- Venice's other endpoints ----

TEST_F(Mock, EmbeddingsUsageIsPredictable) {
  auto r = post("/api/v1/embeddings", R"({"model":"text-embedding-bge-m3","input":["abcdefgh","x"],"dimensions":4})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = json::parse(r->body);
  EXPECT_EQ(j["data"].size(), 2u);
  EXPECT_EQ(j["data"][1]["embedding"].size(), 4u);
  EXPECT_EQ(j["usage"]["prompt_tokens"], lagoon::mock::embedding_tokens_for({"abcdefgh", "x"}));
  EXPECT_EQ(post("/api/v1/embeddings", R"({"model":"m","input":[1,2]})")->status, 400);
}

TEST_F(Mock, BinaryImagesAreTheGeneratorsBytes) {
  auto r =
      post("/v1/image/generate",
           R"({"model":"venice-sd35","prompt":"a cat","return_binary":true,"format":"jpeg","x_mock":{"bytes":777}})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->header("content-type"), "image/jpeg");
  EXPECT_EQ(r->body, lagoon::mock::mock_bytes(777, lagoon::mock::image_key("a cat", 0)));
  // An upload and the same image as base64 in JSON are the same request to the mock.
  const std::string image("\x89PNG\r\n\x1a\n some pixels", 20);
  auto uploaded = form("/api/v1/image/upscale", {{"image", "in.png", image}, {"scale", "", "2"}});
  auto as_json = post("/api/v1/image/upscale", json{{"image", lagoon::mock::base64_encode(image)}}.dump());
  ASSERT_TRUE(uploaded && as_json);
  EXPECT_EQ(uploaded->status, 200);
  EXPECT_EQ(uploaded->header("content-type"), "image/png");
  EXPECT_EQ(uploaded->body,
            lagoon::mock::mock_bytes(lagoon::mock::kDefaultBinaryBytes, lagoon::mock::edit_key("upscale", image)));
  EXPECT_EQ(as_json->body, uploaded->body);
}

TEST_F(Mock, TranscriptionOfAWavReportsItsSeconds) {
  const std::string wav = lagoon::mock::pcm_wav(16000, 1, 16, 24000);
  auto r = form(
      "/api/v1/audio/transcriptions",
      {{"file", "a.wav", wav}, {"model", "", "openai/whisper-large-v3"}, {"x_mock", "", R"({"chunks":2,"record":1})"}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = json::parse(r->body);
  EXPECT_EQ(j["text"], "tok0 tok1");
  EXPECT_DOUBLE_EQ(j["duration"].get<double>(), 1.5);
  auto last = json::parse(request(port, "GET", "/mock/last-request")->body);
  EXPECT_EQ(last["path"], "/audio/transcriptions");
  EXPECT_EQ(last["parts"][0]["size"], wav.size());
  EXPECT_NE(lagoon::mock::base64_decode(last["body_base64"].get<std::string>())->find(wav), std::string::npos);

  auto text = form("/api/v1/audio/transcriptions", {{"file", "a.wav", wav}, {"response_format", "", "text"}});
  EXPECT_EQ(text->header("content-type"), "text/plain; charset=utf-8");
  auto mp3 = form("/api/v1/audio/transcriptions", {{"file", "a.mp3", "ID3 not a wav"}});
  EXPECT_FALSE(json::parse(mp3->body).contains("duration"));
  auto failing = form("/api/v1/audio/transcriptions", {{"file", "a.wav", wav}, {"x_mock", "", R"({"status":503})"}});
  EXPECT_EQ(failing->status, 503);
  EXPECT_EQ(failing->header("retry-after"), "1");
}

TEST_F(Mock, SpeechArrivesInHttpChunksBeforeTheLastIsSent) {
  const std::string body =
      R"({"input":"hello","response_format":"wav","x_mock":{"chunks":3,"gap-ms":1500,"bytes":3000}})";
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string req =
      "POST /api/v1/audio/speech HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer upstream-secret\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + 700ms;
  for (auto now = std::chrono::steady_clock::now(); now < deadline; now = std::chrono::steady_clock::now()) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1,
               static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count())) <= 0)
      break;
    char buf[8192];
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  EXPECT_NE(got.find("Content-Type: audio/wav"), std::string::npos) << got.substr(0, 300);
  EXPECT_NE(got.find("Transfer-Encoding: chunked"), std::string::npos);
  // The first of three 1000-byte pieces, and not the last chunk.
  EXPECT_NE(got.find("\r\n3e8\r\n" + lagoon::mock::mock_bytes(3000, "hello").substr(0, 1000)), std::string::npos);
  EXPECT_EQ(got.find("\r\n0\r\n\r\n"), std::string::npos);
}

TEST_F(Mock, ResponsesStreamEndsWithTheCompletedResponse) {
  auto r = post("/api/v1/responses", R"({"model":"m","input":"hi","stream":true,"x_mock":{"chunks":3}})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->header("content-type"), "text/event-stream");
  EXPECT_EQ(r->body.rfind("event: response.created\n", 0), 0u);
  const auto last = r->body.rfind("event: ");
  EXPECT_EQ(r->body.substr(last, r->body.find('\n', last) - last), "event: response.completed");
  auto plain = json::parse(post("/api/v1/responses", R"({"model":"m","input":"hi","x_mock":{"chunks":3}})")->body);
  EXPECT_EQ(plain["output"][0]["content"][0]["text"], "tok0 tok1 tok2 ");
  EXPECT_EQ(plain["usage"]["output_tokens"], 3);
}

TEST_F(Mock, CatalogAnswersWithoutAKeyAndIsCounted) {
  auto tts = request(port, "GET", "/api/v1/models?type=tts");
  ASSERT_TRUE(tts);
  ASSERT_EQ(tts->status, 200);
  EXPECT_EQ(json::parse(tts->body)["data"][0]["type"], "tts");
  EXPECT_EQ(request(port, "GET", "/api/v1/models/traits")->status, 200);
  EXPECT_EQ(request(port, "GET", "/api/v1/image/styles", "", "Authorization: Bearer upstream-secret\r\n")->status, 200);
  EXPECT_EQ(request(port, "GET", "/api/v1/models", "", "Authorization: Bearer wrong\r\n")->status, 401);
  EXPECT_EQ(request(port, "GET", "/api/v1/models?type=nope")->status, 400);
  EXPECT_EQ(request(port, "POST", "/api/v1/embeddings", "{}")->status, 401);  // the others need the key
  auto stats = json::parse(request(port, "GET", "/mock/stats")->body);
  EXPECT_EQ(stats["catalog_requests"], 5);
  EXPECT_EQ(stats["requests_by_path"]["/models"], 3);
  EXPECT_EQ(stats["requests_by_path"]["/embeddings"], 1);
}

TEST_F(Mock, ChatAnswersCarryTheCostOfTheirTokensWholeAndStreamed) {
  // 800 prompt tokens (the cache directives' sum, more than the body counts): 600 read at 0.3, 200 written
  // at 3.75, no other; 50 completion tokens at 15 — USD per 1M tokens.
  const std::string cache = "x-mock-cached-tokens: 600\r\nx-mock-cache-write-tokens: 200\r\nx-mock-chunks: 50\r\n";
  auto whole = chat(R"({"model":"claude-mock-sonnet","messages":[]})", cache);
  ASSERT_TRUE(whole);
  ASSERT_EQ(whole->status, 200);
  EXPECT_NE(whole->body.find(R"("cost":{"diem":0,"usd":0.00168})"), std::string::npos) << whole->body;
  const auto usage = json::parse(whole->body)["usage"];
  EXPECT_EQ(usage["prompt_tokens"], 800);
  EXPECT_EQ(usage["prompt_tokens_details"], json::parse(R"({"cached_tokens":600,"cache_creation_input_tokens":200})"));

  auto streamed = chat(R"({"model":"claude-mock-sonnet","messages":[],"stream":true,)"
                       R"("stream_options":{"include_usage":true}})",
                       cache);
  ASSERT_TRUE(streamed);
  const auto last = streamed->body.rfind("data: {");
  const auto chunk = json::parse(streamed->body.substr(last + 6, streamed->body.find("\n\n", last) - last - 6));
  EXPECT_EQ(chunk["usage"], usage);
  EXPECT_EQ(chunk["cost"], json::parse(R"({"diem":0,"usd":0.00168})"));
  EXPECT_EQ(streamed->body.find("\"cost\""), streamed->body.rfind("\"cost\""));  // in the usage chunk only

  auto unknown = chat(R"({"model":"m","messages":[]})");
  ASSERT_TRUE(unknown);
  EXPECT_FALSE(json::parse(unknown->body).contains("cost"));
  auto set = chat(R"({"model":"m","messages":[],"x_mock":{"cost":0.5,"cost-diem":0.25}})");
  EXPECT_EQ(json::parse(set->body)["cost"], json::parse(R"({"diem":0.25,"usd":0.5})"));
  auto none = chat(R"({"model":"llama-3.3-70b","messages":[]})", "x-mock-cost: none\r\n");
  EXPECT_FALSE(json::parse(none->body).contains("cost"));
}

TEST_F(Mock, CatalogControlHoldsUntilTheNextOne) {
  auto control = [&](const std::string& body) { return request(port, "POST", "/mock/catalog", body)->status; };
  ASSERT_EQ(control(R"({"status":503})"), 200);
  auto failing = request(port, "GET", "/api/v1/models?type=image");
  EXPECT_EQ(failing->status, 503);
  EXPECT_EQ(failing->header("retry-after"), "1");
  EXPECT_EQ(json::parse(failing->body), json::parse(R"({"error":"mock upstream error 503"})"));
  EXPECT_EQ(request(port, "GET", "/api/v1/models/traits")->status, 200);

  ASSERT_EQ(control(R"({"malformed":true})"), 200);
  auto cut = request(port, "GET", "/api/v1/models");
  EXPECT_EQ(cut->status, 200);
  EXPECT_FALSE(json::accept(cut->body));

  ASSERT_EQ(control(R"({"drop":["qwen3-235b"],"pricing":{"llama-3.3-70b":)"
                    R"({"input":{"usd":1,"diem":10},"output":{"usd":1000,"diem":10000}}}})"),
            200);
  const auto text = json::parse(request(port, "GET", "/api/v1/models")->body);
  EXPECT_EQ(text["data"][0]["model_spec"]["pricing"]["output"]["usd"], 1000);
  EXPECT_EQ(text["data"][1]["id"], "mistral-31-24b");
  const auto body = R"({"model":"llama-3.3-70b","messages":[],"x_mock":{"chunks":1000}})";
  const auto priced = json::parse(chat(body)->body);  // 1000 completion tokens at $1000 per 1M
  EXPECT_EQ(priced["cost"]["usd"], (priced["usage"]["prompt_tokens"].get<double>() + 1e6) / 1e6);

  EXPECT_EQ(control(R"({"drop":["no-such-model"]})"), 400);
  ASSERT_EQ(control("{}"), 200);
  EXPECT_EQ(request(port, "GET", "/api/v1/models")->body, *lagoon::mock::models_body());
  EXPECT_EQ(json::parse(request(port, "GET", "/mock/stats")->body)["requests_by_path"]["/models"], 4);
}
