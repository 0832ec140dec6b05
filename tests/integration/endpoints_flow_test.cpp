// Venice's endpoints besides chat when things go otherwise: upstream errors, clients that leave, rate
// limits, each endpoint all three ways; the catalog's cache and key setting; the official OpenAI Node SDK
// on every endpoint. The plain successes are in endpoints_test.cpp.
#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include <nlohmann/json.hpp>

#include "integration/endpoints_fixture.hpp"
#include "lagoon/mock/media.hpp"
#include "lagoon/mock/responses.hpp"

using namespace lagoon::test;
using namespace std::chrono_literals;
using nlohmann::json;

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

namespace {

// One request of each endpoint, its usage row's endpoint and unit, its body built around an x_mock.
struct EndpointCase {
  std::string path, endpoint, unit;
  std::function<std::pair<std::string, std::string>(const json& x_mock)> body;  // body, content type
};

std::vector<EndpointCase> endpoint_cases() {
  static const std::string wav = lagoon::mock::pcm_wav(8000, 1, 16, 8000);
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
  return {
      {"/embeddings", "embeddings", "-", as_json({{"model", "text-embedding-bge-m3"}, {"input", "hello"}})},
      {"/images/generations", "images", "images", as_json({{"model", "venice-sd35"}, {"prompt", "p"}})},
      {"/image/generate", "images", "images", as_json({{"model", "venice-sd35"}, {"prompt", "p"}})},
      {"/image/upscale", "images", "images", as_form([](Form& f) { f.file("image", "a.png", "image/png", "PNG"); })},
      {"/image/edit", "images", "images",
       as_form([](Form& f) { f.file("image", "a.png", "image/png", "PNG").field("prompt", "add a boat"); })},
      {"/image/background-remove", "images", "images", as_json({{"image", "UE5H"}})},
      {"/audio/speech", "audio", "characters", as_json({{"model", "tts-kokoro"}, {"input", "hello"}})},
      {"/audio/transcriptions", "audio", "seconds", as_form([](Form& f) {
         f.file("file", "a.wav", "audio/wav", wav).field("model", "openai/whisper-large-v3");
       })},
      {"/responses", "responses", "-", as_json({{"model", "venice-uncensored"}, {"input", "hi"}})},
  };
}

}  // namespace

// Each endpoint the same four ways: answered, refused by the upstream, left by its client while the
// upstream is still thinking, and over its key's limit — one row each, with the endpoint's measure where
// something was made.
TEST_F(Endpoints, EveryEndpointSucceedsFailsLosesItsClientAndMeetsItsLimitWithOneRowEach) {
  start();
  const std::vector<EndpointCase> cases = endpoint_cases();
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

    // A key allowed one request a minute: the second is refused before it goes upstream.
    const auto limited = create_key(env, "limited" + std::to_string(rows), {"--rpm", "1"}).second;
    EXPECT_EQ(post(c.path, ok_body, ok_type, limited)->status, 200);
    const int upstream_before = upstream_saw();
    auto refused = post(c.path, ok_body, ok_type, limited);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->status, 429) << refused->body;
    EXPECT_FALSE(refused->header("retry-after").empty());
    EXPECT_EQ(refused->header("x-ratelimit-remaining-requests"), "0");
    EXPECT_EQ(upstream_saw(), upstream_before);
    rows += 2;
    ASSERT_EQ(usage_rows(rows), rows);
    EXPECT_EQ(last_row("endpoint, outcome, status_code"), c.endpoint + ",rate_limited,429");
  }
}
