// Venice's endpoints besides chat, and its catalog, on the real binary against the mock upstream, Redis
// and Postgres: what reaches the upstream, what comes back (binary bodies byte for byte, compared by
// SHA-256 with what the mock's generator makes), streams arriving before the upstream has finished,
// errors, disconnects, limits, and the one usage row each request makes with its measure.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <functional>

#include <nlohmann/json.hpp>

#include "integration/chat_fixture.hpp"
#include "lagoon/mock/media.hpp"
#include "lagoon/mock/responses.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

std::string sha256(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &n, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) out += {hex[md[i] >> 4], hex[md[i] & 15]};
  return out;
}

struct Form {
  std::string boundary = "lagoon-test-7MA4YWxkTrZu0gW";
  std::string body;
  Form& field(const std::string& name, const std::string& value) {
    body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n";
    return *this;
  }
  Form& file(const std::string& name, const std::string& filename, const std::string& type, const std::string& bytes) {
    body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"; filename=\"" + filename +
            "\"\r\nContent-Type: " + type + "\r\n\r\n" + bytes + "\r\n";
    return *this;
  }
  std::string done() const { return body + "--" + boundary + "--\r\n"; }
  std::string content_type() const { return "multipart/form-data; boundary=" + boundary; }
};

// A client on a plain socket that reads what has come so far, for an answer that never ends.
class RawClient {
 public:
  explicit RawClient(unsigned short port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect failed");
  }
  ~RawClient() { close(); }
  void send(const std::string& bytes) { ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size())); }
  // Everything read until `want` appears in it, the peer closes, or `timeout` passes.
  std::string read_until(std::string_view want, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string got;
    while (got.find(want) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[65536];
      const auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Closes with a TCP reset, as a client that is killed or cancels with data unread. (A plain close is
  // a half-close to the gateway, whose reader may still want the answer.)
  void reset() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close();
  }

 private:
  int fd_;
};

}  // namespace

class Endpoints : public Chat {
 protected:
  std::optional<HttpResponse> post(const std::string& path, const std::string& body,
                                   const std::string& content_type = "application/json", const std::string& k = "") {
    return request(server->port(), "POST", "/api/v1" + path, body,
                   "Authorization: Bearer " + (k.empty() ? key : k) + "\r\nContent-Type: " + content_type + "\r\n");
  }
  std::optional<HttpResponse> get(const std::string& target, bool with_key = true) {
    return request(server->port(), "GET", target, "", with_key ? "Authorization: Bearer " + key + "\r\n" : "");
  }
  // The newest usage row's columns, comma-separated.
  std::string last_row(const std::string& columns) {
    return db.scalar("SELECT concat_ws(',', " + columns + ") FROM usage_records ORDER BY started_at DESC LIMIT 1");
  }
};

TEST_F(Endpoints, EmbeddingsAreRelayedByteForByteAndCountedInTheUpstreamsTokens) {
  start();
  const std::string body = R"({"model":"text-embedding-bge-m3","input":["first text","second"],"dimensions":8,"x_mock":{"record":1}})";
  auto r = post("/embeddings", body);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto j = json::parse(r->body);
  EXPECT_EQ(j["data"].size(), 2u);
  const auto tokens = lagoon::mock::embedding_tokens_for({"first text", "second"});
  EXPECT_EQ(j["usage"]["prompt_tokens"], tokens);
  const auto seen = mock.last_request();
  EXPECT_EQ(seen["body"], body);
  EXPECT_EQ(seen["path"], "/embeddings");
  EXPECT_EQ(seen["headers"]["Content-Type"], "application/json");
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(last_row("endpoint, model, status_code, outcome, prompt_tokens, total_tokens, tokens_estimated, "
                     "coalesce(unit, '-'), session_id IS NOT NULL"),
            "embeddings,text-embedding-bge-m3,200,ok," + std::to_string(tokens) + "," + std::to_string(tokens) +
                ",f,-,t");
}

TEST_F(Endpoints, ImagesAreCountedByWhatCameBack) {
  start();
  auto r = post("/images/generations", R"({"model":"venice-sd35","prompt":"a lagoon","n":2})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["data"].size(), 2u);
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(last_row("endpoint, outcome, units, unit, total_tokens IS NULL"), "images,ok,2,images,t");

  auto g = post("/image/generate", R"({"model":"venice-sd35","prompt":"a lagoon","variants":3})");
  ASSERT_TRUE(g);
  ASSERT_EQ(g->status, 200) << g->body;
  EXPECT_EQ(json::parse(g->body)["images"].size(), 3u);
  ASSERT_EQ(usage_rows(2), 2);
  EXPECT_EQ(last_row("endpoint, units, unit"), "images,3,images");
}

TEST_F(Endpoints, ABinaryImageArrivesByteForByte) {
  start();
  auto r = post("/image/generate",
                R"({"model":"venice-sd35","prompt":"a lagoon at dawn","return_binary":true,"format":"png","x_mock":{"bytes":300000}})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->header("content-type"), "image/png");
  EXPECT_EQ(r->body.size(), 300000u);
  EXPECT_EQ(sha256(r->body), sha256(lagoon::mock::mock_bytes(300000, lagoon::mock::image_key("a lagoon at dawn", 0))));
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(last_row("endpoint, outcome, units, unit"), "images,ok,1,images");
}

TEST_F(Endpoints, AnUploadedImageGoesUpAsAMultipartBodyWithItsBoundaryAndComesBackEdited) {
  start();
  const std::string image = lagoon::mock::mock_bytes(200000, "the uploaded picture");
  Form form;
  form.file("image", "in.png", "image/png", image).field("scale", "2").field("x_mock", R"({"record":1})");
  const std::string body = form.done();
  auto r = post("/image/upscale", body, form.content_type());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(sha256(r->body),
            sha256(lagoon::mock::mock_bytes(lagoon::mock::kDefaultBinaryBytes, lagoon::mock::edit_key("upscale", image))));
  const auto seen = mock.last_request();
  EXPECT_EQ(seen["headers"]["Content-Type"], form.content_type());
  EXPECT_EQ(lagoon::mock::base64_decode(seen["body_base64"].get<std::string>()), body);  // byte for byte
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(last_row("endpoint, outcome, units, unit, model IS NULL, session_id IS NULL"), "images,ok,1,images,t,t");
}

TEST_F(Endpoints, SpeechIsRelayedAsItComesAndCountedInCharacters) {
  start();
  const std::string input = "Hello from the lagoon, où l'eau est calme.";
  auto r = post("/audio/speech", json{{"model", "tts-kokoro"}, {"voice", "af_sky"}, {"input", input}}.dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->header("content-type"), "audio/mpeg");
  EXPECT_EQ(sha256(r->body), sha256(lagoon::mock::mock_bytes(lagoon::mock::kDefaultBinaryBytes, input)));
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(last_row("endpoint, outcome, units, unit, stream"), "audio,ok,42,characters,f");
}

TEST_F(Endpoints, StreamedSpeechReachesTheClientBeforeTheUpstreamHasFinished) {
  start();
  // The mock sends the first piece and then nothing, ever: whatever arrives was relayed as it came.
  const std::string input = "A sentence, then silence.";
  const std::string body =
      json{{"model", "tts-kokoro"}, {"input", input}, {"streaming", true}, {"x_mock", {{"stall", "body"}}}}.dump();
  RawClient c(server->port());
  c.send("POST /api/v1/audio/speech HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + key +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  const std::string first = lagoon::mock::mock_bytes(lagoon::mock::kDefaultBinaryBytes, input).substr(0, 64);
  const std::string seen = c.read_until(first, 10s);
  EXPECT_NE(seen.find("HTTP/1.1 200"), std::string::npos) << seen.substr(0, 200);
  EXPECT_NE(seen.find("audio/mpeg"), std::string::npos);
  ASSERT_NE(seen.find(first), std::string::npos) << "the first piece did not come through";
  c.reset();  // the client leaves; the upstream is still "speaking"
  ASSERT_EQ(usage_rows(1), 1);
  // Counted in full: what was asked was made upstream.
  EXPECT_EQ(last_row("endpoint, outcome, units, unit, stream"), "audio,client_disconnected,25,characters,t");
}

TEST_F(Endpoints, ATranscriptionIsCountedInTheSecondsTheAnswerSaysElseInTheUploadsBytes) {
  start();
  const std::string wav = lagoon::mock::pcm_wav(16000, 1, 16, 40000);  // 2.5 s
  Form form;
  form.file("file", "hello.wav", "audio/wav", wav).field("model", "openai/whisper-large-v3");
  auto r = post("/audio/transcriptions", form.done(), form.content_type());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["duration"], 2.5);
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(last_row("endpoint, model, outcome, units, unit"), "audio,openai/whisper-large-v3,ok,2.5,seconds");

  Form text;
  text.file("file", "hello.wav", "audio/wav", wav).field("model", "openai/whisper-large-v3");
  text.field("response_format", "text").field("x_mock", R"({"no-duration":1})");
  auto t = post("/audio/transcriptions", text.done(), text.content_type());
  ASSERT_TRUE(t);
  ASSERT_EQ(t->status, 200) << t->body;
  ASSERT_EQ(usage_rows(2), 2);
  EXPECT_EQ(last_row("units, unit"), std::to_string(wav.size()) + ",bytes");
}

TEST_F(Endpoints, UploadsMayBeLargerThanOtherBodiesUpToTheirOwnLimit) {
  start({{"LAGOON_MAX_BODY_BYTES", "65536"}, {"LAGOON_MAX_UPLOAD_BYTES", "1048576"}});
  const std::string wav = lagoon::mock::pcm_wav(16000, 1, 16, 300000);  // 600 KB: past the body limit
  Form ok;
  ok.file("file", "long.wav", "audio/wav", wav).field("model", "openai/whisper-large-v3");
  auto r = post("/audio/transcriptions", ok.done(), ok.content_type());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  const std::string big_json = json{{"model", "e"}, {"input", std::string(100000, 'x')}}.dump();
  auto e = post("/embeddings", big_json);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status, 413);
  Form too_big;
  too_big.file("file", "long.wav", "audio/wav", lagoon::mock::pcm_wav(16000, 1, 16, 600000));
  auto u = post("/audio/transcriptions", too_big.done(), too_big.content_type());
  ASSERT_TRUE(u);
  EXPECT_EQ(u->status, 413);
  EXPECT_NE(u->body.find("1048576"), std::string::npos) << u->body;
  // Refused before their bodies were read: no usage row (nothing passed authentication's request).
  ASSERT_EQ(usage_rows(1), 1);
}

TEST_F(Endpoints, AResponseIsCountedFromItsUsageWholeOrStreamed) {
  start();
  auto r = post("/responses", R"({"model":"venice-uncensored","input":"Say hi","x_mock":{"chunks":3}})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto j = json::parse(r->body);
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(last_row("endpoint, outcome, prompt_tokens, completion_tokens, tokens_estimated"),
            "responses,ok," + std::to_string(j["usage"]["input_tokens"].get<int>()) + "," +
                std::to_string(j["usage"]["output_tokens"].get<int>()) + ",f");

  auto s = post("/responses", R"({"model":"venice-uncensored","input":"Say hi","stream":true,"x_mock":{"chunks":4}})");
  ASSERT_TRUE(s);
  ASSERT_EQ(s->status, 200) << s->body;
  EXPECT_EQ(s->header("content-type"), "text/event-stream");
  const auto events = data_lines(s->body);
  ASSERT_GE(events.size(), 2u);
  const auto completed = json::parse(events.back());
  EXPECT_EQ(completed["type"], "response.completed");
  EXPECT_NE(s->body.find("event: response.output_text.delta\n"), std::string::npos);
  ASSERT_EQ(usage_rows(2), 2);
  EXPECT_EQ(last_row("outcome, stream, total_tokens, tokens_estimated"),
            "ok,t," + std::to_string(completed["response"]["usage"]["total_tokens"].get<int>()) + ",f");
}

TEST_F(Endpoints, AClientThatLeavesAResponsesStreamIsBilledAtLeastItsEstimate) {
  start();
  RawClient c(server->port());
  const std::string body = R"({"model":"m","input":"Say hi","stream":true,"x_mock":{"chunks":50,"gap-ms":200}})";
  c.send("POST /api/v1/responses HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + key +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  ASSERT_NE(c.read_until("response.output_text.delta", 10s).find("response.output_text.delta"), std::string::npos);
  c.reset();
  ASSERT_EQ(usage_rows(1), 1);
  EXPECT_EQ(last_row("endpoint, outcome, tokens_estimated, prompt_tokens > 0"), "responses,client_disconnected,t,t");
  // The upstream saw the client go.
  wait_until([&] { return mock.stats()["client_disconnects"].get<int>() >= 1; }, 5s);
  EXPECT_GE(mock.stats()["client_disconnects"].get<int>(), 1);
}

TEST_F(Endpoints, UpstreamErrorsAreAnsweredAsForChat) {
  start();
  auto bad = post("/embeddings", R"({"model":"e","input":"x","x_mock":{"status":400}})");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_TRUE(json::parse(bad->body)["error"].is_object());
  auto down = post("/audio/speech", R"({"input":"x","x_mock":{"status":500}})");
  ASSERT_TRUE(down);
  EXPECT_EQ(down->status, 502);
  auto broke = post("/image/generate",
                    R"({"model":"venice-sd35","prompt":"p","return_binary":true,"x_mock":{"reset-after":2,"chunks":5,"bytes":100000}})");
  // A binary body that breaks off is cut short, never ended as if whole.
  EXPECT_TRUE(!broke || broke->body.size() < 100000u);
  ASSERT_EQ(usage_rows(3), 3);
  EXPECT_EQ(db.scalar("SELECT string_agg(endpoint || ':' || outcome || ':' || coalesce(unit, '-'), ' ' ORDER BY "
                      "started_at) FROM usage_records"),
            "embeddings:upstream_error:- audio:upstream_error:- images:upstream_error:images");
}

TEST_F(Endpoints, ImagesAndAudioMeetRequestLimitsButNotTokenLimits) {
  auto [id, limited] = create_key(env, "bob", {"--rpm", "2", "--tpm", "1"});
  start();
  // The token budget is spent by a token-counted request…
  auto e = post("/embeddings", R"({"model":"e","input":"a text of some length to spend tokens"})", "application/json",
                limited);
  ASSERT_TRUE(e);
  ASSERT_EQ(e->status, 200) << e->body;
  auto e2 = post("/embeddings", R"({"model":"e","input":"more"})", "application/json", limited);
  ASSERT_TRUE(e2);
  EXPECT_EQ(e2->status, 429);
  EXPECT_EQ(json::parse(e2->body)["error"]["code"], "rate_limit_exceeded");
  // …but speech has no tokens: only its requests count (a refused request takes none), and the second
  // of the minute is the last.
  auto s = post("/audio/speech", R"({"input":"hello"})", "application/json", limited);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->status, 200) << s->body;
  EXPECT_FALSE(s->header("x-ratelimit-remaining-requests").empty());
  EXPECT_EQ(s->header("x-ratelimit-remaining-tokens"), "");
  auto s2 = post("/audio/speech", R"({"input":"hello"})", "application/json", limited);
  ASSERT_TRUE(s2);
  EXPECT_EQ(s2->status, 429);
}

TEST_F(Endpoints, TheCatalogIsCachedPerPathAndTypeAndAsksForAKeyUnlessPublic) {
  start();
  EXPECT_EQ(get("/api/v1/models?type=image", false)->status, 401);
  const auto before = mock.stats()["catalog_requests"].get<int>();
  auto images = get("/api/v1/models?type=image");
  ASSERT_TRUE(images);
  ASSERT_EQ(images->status, 200) << images->body;
  const auto list = json::parse(images->body);
  ASSERT_FALSE(list["data"].empty());
  for (const auto& m : list["data"]) EXPECT_EQ(m["type"], "image");
  EXPECT_TRUE(list["data"][0].contains("model_spec"));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(get("/v1/models?type=image")->body, images->body);
  for (const char* path : {"/api/v1/models/traits", "/api/v1/models/compatibility_mapping", "/api/v1/image/styles"}) {
    auto r = get(path);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << path << " " << r->body;
    EXPECT_EQ(get(path)->body, r->body);
  }
  EXPECT_EQ(mock.stats()["catalog_requests"].get<int>() - before, 4);  // one each, then the cache
  EXPECT_EQ(get("/api/v1/models?type=nonsense")->status, 400);
  ASSERT_EQ(usage_rows(13), 13);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM usage_records WHERE endpoint = 'models'"), "13");

  start({{"LAGOON_CATALOG_PUBLIC", "true"}});
  auto open = get("/api/v1/image/styles", false);
  ASSERT_TRUE(open);
  EXPECT_EQ(open->status, 200);
  EXPECT_EQ(post("/embeddings", R"({"input":"x"})", "application/json", "sk-lgn_not-a-key")->status, 401);
}

// The official OpenAI Node SDK (tests/e2e) on each endpoint, through Lagoon, against the mock.
TEST_F(Endpoints, TheOfficialOpenAiNodeSdkWorksOnEveryEndpoint) {
  start();
  Env e;
  e["LAGOON_URL"] = "http://127.0.0.1:" + std::to_string(server->port());
  e["LAGOON_KEY"] = key;
  auto r = run({"/usr/bin/env", "node", std::string(LAGOON_SOURCE_DIR) + "/tests/e2e/venice_endpoints.mjs"}, e, 60s);
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("\"ok\":true"), std::string::npos) << r.out << r.err;
  ASSERT_EQ(usage_rows(7), 7);
  EXPECT_EQ(db.scalar("SELECT string_agg(endpoint || ':' || outcome || ':' || coalesce(units::text, '-') || ':' || "
                      "coalesce(unit, '-'), ' ' ORDER BY started_at) FROM usage_records"),
            "embeddings:ok:-:- images:ok:2:images audio:ok:22:characters audio:ok:1.5:seconds responses:ok:-:- "
            "responses:ok:-:- embeddings:upstream_error:-:-");
}

// Each endpoint the same three ways: answered, refused by the upstream, and left by its client while
// the upstream is still thinking — one row each, with the endpoint's measure where something was made.
TEST_F(Endpoints, EveryEndpointSucceedsFailsAndLosesItsClientWithOneRowEach) {
  start();
  struct Case {
    std::string path, endpoint, unit;
    std::function<std::pair<std::string, std::string>(const json& x_mock)> body;  // body, content type
  };
  const std::string wav = lagoon::mock::pcm_wav(8000, 1, 16, 8000);
  auto as_json = [](json body) {
    return [body](const json& x) {
      json b = body;
      b["x_mock"] = x;
      return std::make_pair(b.dump(), std::string("application/json"));
    };
  };
  auto as_form = [](std::function<void(Form&)> fill) {
    return [fill](const json& x) {
      Form f;
      fill(f);
      f.field("x_mock", x.dump());
      return std::make_pair(f.done(), f.content_type());
    };
  };
  const std::vector<Case> cases{
      {"/embeddings", "embeddings", "-", as_json({{"model", "text-embedding-bge-m3"}, {"input", "hello"}})},
      {"/images/generations", "images", "images", as_json({{"model", "venice-sd35"}, {"prompt", "p"}})},
      {"/image/generate", "images", "images", as_json({{"model", "venice-sd35"}, {"prompt", "p"}})},
      {"/image/upscale", "images", "images", as_form([](Form& f) { f.file("image", "a.png", "image/png", "PNG"); })},
      {"/image/edit", "images", "images",
       as_form([](Form& f) { f.file("image", "a.png", "image/png", "PNG").field("prompt", "add a boat"); })},
      {"/image/background-remove", "images", "images", as_json({{"image", "UE5H"}})},
      {"/audio/speech", "audio", "characters", as_json({{"model", "tts-kokoro"}, {"input", "hello"}})},
      {"/audio/transcriptions", "audio", "seconds", as_form([&wav](Form& f) {
         f.file("file", "a.wav", "audio/wav", wav).field("model", "openai/whisper-large-v3");
       })},
      {"/responses", "responses", "-", as_json({{"model", "venice-uncensored"}, {"input", "hi"}})},
  };
  std::int64_t rows = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.path);
    const auto [ok_body, ok_type] = c.body(json::object());
    auto ok = post(c.path, ok_body, ok_type);
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200) << ok->body;
    ++rows;
    ASSERT_EQ(usage_rows(rows), rows);
    EXPECT_EQ(last_row("endpoint, outcome, coalesce(unit, '-'), units IS NOT NULL OR total_tokens IS NOT NULL"),
              c.endpoint + ",ok," + c.unit + ",t");

    const auto [bad_body, bad_type] = c.body(json{{"status", 500}});
    auto bad = post(c.path, bad_body, bad_type);
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 502) << bad->body;
    ++rows;
    ASSERT_EQ(usage_rows(rows), rows);
    EXPECT_EQ(last_row("endpoint, outcome, status_code, unit IS NULL"), c.endpoint + ",upstream_error,502,t");

    // The client resets while the upstream takes its time; the answer then finds no one to take it.
    const auto [slow_body, slow_type] = c.body(json{{"first-byte-ms", 600}});
    const auto upstream_saw = [&] { return mock.stats()["requests_by_path"].value(c.path, 0); };
    const int before = upstream_saw();
    RawClient gone(server->port());
    gone.send("POST /api/v1" + c.path + " HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + key +
              "\r\nContent-Type: " + slow_type + "\r\nContent-Length: " + std::to_string(slow_body.size()) +
              "\r\n\r\n" + slow_body);
    ASSERT_TRUE(wait_until([&] { return upstream_saw() > before; }, 5s));  // it is upstream, then the client goes
    gone.reset();
    ++rows;
    ASSERT_EQ(usage_rows(rows), rows);
    EXPECT_EQ(last_row("endpoint, outcome"), c.endpoint + ",client_disconnected");
  }
}
