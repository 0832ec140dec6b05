// Key policy on the real binary, set the way operators set it (the CLI), against real Redis, Postgres and
// the mock upstream: a model or endpoint list holds on every route group (chat whole and streamed,
// embeddings, images, audio, responses) and shapes /models; a user's defaults are inherited; and on two
// instances: expiry at its exact second (the instances read their time from LAGOON_CLOCK_FILE), a policy
// change within a second, a concurrency cap shared by both, a crashed instance's slots back within the
// lease, and rotation's grace with its header.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <functional>
#include <thread>

#include <nlohmann/json.hpp>

#include "integration/endpoints_fixture.hpp"
#include "support/temp_dir.hpp"

namespace lagoon::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kLlama = R"({"model":"llama-3.3-70b","messages":[{"role":"user","content":"hi"}]})";
constexpr const char* kQwen = R"({"model":"qwen3-4b","messages":[{"role":"user","content":"hi"}]})";
constexpr const char* kQwenStream = R"({"model":"qwen3-4b","stream":true,"messages":[{"role":"user","content":"hi"}]})";
constexpr const char* kLlamaStream =
    R"({"model":"llama-3.3-70b","stream":true,"messages":[{"role":"user","content":"hi"}]})";

std::string code_of(const std::optional<HttpResponse>& r) {
  if (!r) return "no answer";
  const auto j = json::parse(r->body, nullptr, false);
  return j.contains("error") ? j["error"]["code"].get<std::string>() : "status " + std::to_string(r->status);
}

std::optional<HttpResponse> post_as(unsigned short port, const std::string& key, const std::string& path,
                                    const std::string& body, const std::string& content_type = "application/json") {
  return request(port, "POST", "/api/v1" + path, body,
                 "Authorization: Bearer " + key + "\r\nContent-Type: " + content_type + "\r\n");
}

// One request per route group, each naming `model` where the group takes one (its usual model
// otherwise): what a key's policy is checked against.
struct GroupCall {
  const char* group;
  std::string path;
  std::string body;
  std::string content_type = "application/json";
};
std::vector<GroupCall> calls_for_every_group() {
  Form form;
  form.file("file", "hello.wav", "audio/wav", std::string(32000, '\0')).field("model", "openai/whisper-large-v3");
  Form edit;
  edit.file("image", "a.png", "image/png", "PNG").field("prompt", "add a boat");
  return {
      {"chat", "/chat/completions", kQwen},
      {"chat", "/chat/completions", kQwenStream},
      {"embeddings", "/embeddings", R"({"model":"text-embedding-bge-m3","input":"x"})"},
      {"images", "/images/generations", R"({"model":"venice-sd35","prompt":"a lagoon"})"},
      {"images", "/image/generate", R"({"model":"venice-sd35","prompt":"a lagoon"})"},
      {"images", "/image/upscale", R"({"image":"UE5H","scale":2})"},  // Venice's upscaler, named or not
      {"images", "/image/edit", edit.done(), edit.content_type()},  // Venice's default edit model
      {"images", "/image/edit", R"({"image":"UE5H","prompt":"p","modelId":"qwen-edit-uncensored"})"},
      {"images", "/image/background-remove", R"({"image":"UE5H"})"},  // takes no model
      {"audio", "/audio/speech", R"({"model":"tts-kokoro","voice":"af_sky","input":"hi"})"},
      {"audio", "/audio/transcriptions", form.done(), form.content_type()},
      {"responses", "/responses", R"({"model":"venice-uncensored","input":"hi"})"},
  };
}

class KeyPolicy : public Endpoints {
 protected:
  void set(std::int64_t id, const std::vector<std::string>& flags) {
    std::vector<std::string> args{"keys", "update", std::to_string(id)};
    args.insert(args.end(), flags.begin(), flags.end());
    const auto r = lagoon_cli(args, env);
    ASSERT_EQ(r.code, 0) << r.err;
  }
  // The upstream's relayed requests: its own /mock/ control routes (the stats asked for here) and the
  // gateway's price fetches aside.
  double upstream_calls() {
    double n = 0;
    const json stats = mock.stats();  // kept: a range over a temporary's member would outlive it
    for (const auto& [path, count] : stats["requests_by_path"].items())
      if (path.rfind("/mock/", 0) != 0 && path != "/api/v1/models") n += count.get<double>();  // prices aside
    return n;
  }
};

TEST_F(KeyPolicy, AModelListHoldsOnEveryRouteGroupAndNothingRefusedGoesUpstream) {
  auto [id, limited] = create_key(env, "alice", {"--models", "llama-*"});
  auto [images_id, images] = create_key(env, "alice", {"--models", "venice-sd35, firered-*"});
  start();
  const double before = upstream_calls();
  for (const auto& c : calls_for_every_group()) {
    const auto r = post_as(server->port(), limited, c.path, c.body, c.content_type);
    ASSERT_TRUE(r) << c.path;
    if (c.path == "/image/background-remove") {  // no model to judge: its route group governs it
      EXPECT_EQ(r->status, 200) << r->body;
      continue;
    }
    EXPECT_EQ(r->status, 403) << c.path << " " << r->body;
    EXPECT_EQ(code_of(r), "model_not_allowed") << c.path;
    EXPECT_EQ(json::parse(r->body)["error"]["type"], "permission_error");
  }
  EXPECT_EQ(upstream_calls(), before + 1) << "a refused request must not reach the upstream";
  // Images: the model named (as `model` or image/edit's `modelId`), else the endpoint's own default.
  EXPECT_EQ(post_as(server->port(), images, "/images/generations", R"({"model":"venice-sd35","prompt":"p"})")->status, 200);
  EXPECT_EQ(post_as(server->port(), images, "/image/edit", R"({"image":"UE5H","prompt":"p"})")->status, 200);
  EXPECT_EQ(post_as(server->port(), images, "/image/edit", R"({"image":"UE5H","prompt":"p","modelId":"firered-image-edit"})")
                ->status,
            200);
  EXPECT_EQ(code_of(post_as(server->port(), images, "/image/edit",
                            R"({"image":"UE5H","prompt":"p","modelId":"qwen-edit-uncensored"})")),
            "model_not_allowed");
  EXPECT_EQ(code_of(post_as(server->port(), images, "/image/edit",
                            R"({"image":"UE5H","prompt":"p","model":"firered-image-edit","modelId":"qwen-edit-uncensored"})")),
            "invalid_request");
  // What the list allows passes, streamed or not, a Venice suffix included.
  EXPECT_EQ(post_as(server->port(), limited, "/chat/completions", kLlama)->status, 200);
  const auto streamed = post_as(server->port(), limited, "/chat/completions", kLlamaStream);
  EXPECT_EQ(streamed->status, 200);
  EXPECT_NE(streamed->body.find("[DONE]"), std::string::npos);
  EXPECT_EQ(post_as(server->port(), limited, "/chat/completions",
                    R"({"model":"llama-3.3-70b:enable_web_search=on","messages":[]})")->status, 200);
  // Each refusal is one usage row, outcome forbidden, with the model it asked for.
  const int refused = static_cast<int>(calls_for_every_group().size()) - 1;
  wait_until([&] { return std::stoi(db.scalar("SELECT count(*) FROM usage_records WHERE outcome = 'forbidden'")) >= refused; },
             5s);
  EXPECT_EQ(db.scalar("SELECT count(*) FROM usage_records WHERE outcome = 'forbidden' AND status_code = 403 AND "
                      "api_key_id = " + std::to_string(id)),
            std::to_string(refused));
}

TEST_F(KeyPolicy, TheModelListIsWhatTheKeySeesInTheCatalog) {
  auto [id, limited] = create_key(env, "alice", {"--models", "llama-*"});
  start();
  const auto all = request(server->port(), "GET", "/api/v1/models?type=all", "", "Authorization: Bearer " + key + "\r\n");
  const auto mine =
      request(server->port(), "GET", "/api/v1/models?type=all", "", "Authorization: Bearer " + limited + "\r\n");
  ASSERT_EQ(all->status, 200);
  ASSERT_EQ(mine->status, 200);
  const auto every = json::parse(all->body)["data"];
  const auto seen = json::parse(mine->body)["data"];
  ASSERT_GT(every.size(), seen.size());
  ASSERT_FALSE(seen.empty());
  for (const auto& m : seen) EXPECT_EQ(m["id"].get<std::string>().rfind("llama-", 0), 0u) << m["id"];
  std::size_t llamas = 0;
  for (const auto& m : every) llamas += m["id"].get<std::string>().rfind("llama-", 0) == 0;
  EXPECT_EQ(seen.size(), llamas);
}

TEST_F(KeyPolicy, AnEndpointListHoldsOnEveryRouteGroup) {
  auto [id, chat_only] = create_key(env, "alice", {"--endpoints", "chat"});
  start();
  for (const auto& c : calls_for_every_group()) {
    const auto r = post_as(server->port(), chat_only, c.path, c.body, c.content_type);
    ASSERT_TRUE(r) << c.path;
    if (std::string(c.group) == "chat") {
      EXPECT_EQ(r->status, 200) << c.path << " " << r->body;
    } else {
      EXPECT_EQ(r->status, 403) << c.path;
      EXPECT_EQ(code_of(r), "endpoint_not_allowed") << c.path;
    }
  }
  // The catalog and the key's own record are not route groups: always there.
  EXPECT_EQ(request(server->port(), "GET", "/api/v1/models", "", "Authorization: Bearer " + chat_only + "\r\n")->status,
            200);
  const auto me = request(server->port(), "GET", "/api/v1/key", "", "Authorization: Bearer " + chat_only + "\r\n");
  ASSERT_EQ(me->status, 200);
  EXPECT_EQ(json::parse(me->body)["data"]["policy"]["allowed_endpoints"], json::array({"chat"}));
}

TEST_F(KeyPolicy, KeysInheritTheirUsersDefaultsUnlessTheySetTheirOwn) {
  auto [plain_id, plain] = create_key(env, "bob");
  auto [own_id, own] = create_key(env, "bob", {"--models", "*"});
  const auto r = lagoon_cli({"users", "update", "bob", "--models", "llama-*", "--max-concurrent", "5"}, env);
  ASSERT_EQ(r.code, 0) << r.err;
  start();
  EXPECT_EQ(code_of(post_as(server->port(), plain, "/chat/completions", kQwen)), "model_not_allowed");
  EXPECT_EQ(post_as(server->port(), plain, "/chat/completions", kLlama)->status, 200);
  EXPECT_EQ(post_as(server->port(), own, "/chat/completions", kQwen)->status, 200);
  const auto me = request(server->port(), "GET", "/api/v1/key", "", "Authorization: Bearer " + plain + "\r\n");
  const auto policy = json::parse(me->body)["data"]["policy"];
  EXPECT_EQ(policy["allowed_models"], json::array({"llama-*"}));
  EXPECT_EQ(policy["max_concurrent"], 5);
  EXPECT_EQ(policy["expires_at"], nullptr);
}

// Two instances that read the time from one file: the test sets the second.
class KeyPolicyCluster : public KeyPolicy {
 protected:
  void start_two(Env extra = {}) {
    clock_file = dir.file("clock");
    Env e = mock.with(env);
    e["LAGOON_CLOCK_FILE"] = clock_file;
    for (auto& [k, v] : extra) e[k] = v;
    for (int i = 0; i < 2; ++i) {
      instances.push_back(std::make_unique<LagoonServer>(e));
      ASSERT_EQ(instances.back()->wait_ready_status(200, 10s), 200);
    }
  }
  // Written whole, then renamed: an instance reads the old time or the new, never half of one.
  void set_clock(double unix_seconds) {
    const std::string tmp = clock_file + ".tmp";
    {
      std::ofstream out(tmp);
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.6f\n", unix_seconds);
      out << buf;
    }
    ASSERT_EQ(std::rename(tmp.c_str(), clock_file.c_str()), 0);
  }
  std::vector<std::string> statuses(const std::string& key, const char* body = kLlama) {
    std::vector<std::string> out;
    for (auto& s : instances) {
      const auto r = post_as(s->port(), key, "/chat/completions", body);
      out.push_back(r && r->status == 200 ? "ok" : code_of(r));
    }
    return out;
  }
  // How long after `since` the slower instance first gave `want` as its `answer` (each instance's own
  // first time, polled in turn; 5 s when one never did): what "within a second on every instance" means.
  std::chrono::milliseconds until_every_instance(const std::function<std::string(LagoonServer&)>& answer,
                                                 const std::string& want, Clock::time_point since) {
    std::vector<std::optional<Clock::duration>> seen(instances.size());
    while (Clock::now() - since < 5s) {
      bool all = true;
      for (std::size_t i = 0; i < instances.size(); ++i) {
        if (!seen[i] && answer(*instances[i]) == want) seen[i] = Clock::now() - since;
        all = all && seen[i];
      }
      if (all) break;
      std::this_thread::sleep_for(5ms);
    }
    Clock::duration slowest{};
    for (const auto& t : seen) slowest = std::max(slowest, t.value_or(5s));
    return std::chrono::duration_cast<std::chrono::milliseconds>(slowest);
  }
  std::function<std::string(LagoonServer&)> answer_of(const std::string& key, const char* body = kLlama) {
    return [key, body](LagoonServer& s) {
      const auto r = post_as(s.port(), key, "/chat/completions", body);
      return r && r->status == 200 ? std::string("ok") : code_of(r);
    };
  }
  // A stream of ~30 s held open on `port` until the client goes: its head read, so its slot is taken.
  std::unique_ptr<RawClient> hold_stream(unsigned short port, const std::string& key) {
    auto c = std::make_unique<RawClient>(port);
    const std::string body = R"({"model":"llama-3.3-70b","stream":true,"messages":[],"x_mock":{"chunks":100,"gap-ms":300}})";
    c->send("POST /api/v1/chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + key +
            "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    const std::string head = c->read_until("\r\n\r\n", 10s);
    EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
    return c;
  }

  TempDir dir;
  std::string clock_file;
  std::vector<std::unique_ptr<LagoonServer>> instances;
};

TEST_F(KeyPolicyCluster, AKeyExpiresAtTheExactSecondOnEveryInstance) {
  constexpr double kExpiry = 1798761600;  // 2027-01-01T00:00:00Z
  auto [id, key] = create_key(env, "alice", {"--expires", "2027-01-01T00:00:00Z"});
  start_two();
  set_clock(kExpiry - 60);
  EXPECT_EQ(statuses(key), (std::vector<std::string>{"ok", "ok"}));  // cached on both from here on
  set_clock(kExpiry - 0.001);
  EXPECT_EQ(statuses(key), (std::vector<std::string>{"ok", "ok"}));
  set_clock(kExpiry);
  EXPECT_EQ(statuses(key), (std::vector<std::string>{"key_expired", "key_expired"}));
  const auto r = post_as(instances[0]->port(), key, "/chat/completions", kLlama);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(json::parse(r->body)["error"]["type"], "invalid_request_error");
  // Every route, the catalog and the key's own record included.
  for (const auto& c : calls_for_every_group())
    EXPECT_EQ(code_of(post_as(instances[1]->port(), key, c.path, c.body, c.content_type)), "key_expired") << c.path;
  EXPECT_EQ(request(instances[1]->port(), "GET", "/api/v1/models", "", "Authorization: Bearer " + key + "\r\n")->status,
            401);
  EXPECT_EQ(request(instances[1]->port(), "GET", "/api/v1/key", "", "Authorization: Bearer " + key + "\r\n")->status, 401);
  // Given more time by the operator: in force on both within a second, like any change.
  set(id, {"--expires", "2027-06-01T00:00:00Z"});
  const auto changed = Clock::now();  // the change is made (and announced) when the command returns
  EXPECT_LT(until_every_instance(answer_of(key), "ok", changed), 1s);
}

TEST_F(KeyPolicyCluster, APolicyChangeReachesEveryInstanceWithinOneSecond) {
  auto [id, key] = create_key(env);
  start_two();
  ASSERT_EQ(statuses(key, kQwen), (std::vector<std::string>{"ok", "ok"}));  // cached on both
  set(id, {"--models", "llama-*"});
  const auto changed = Clock::now();  // the change is made (and announced) when the command returns
  EXPECT_LT(until_every_instance(answer_of(key, kQwen), "model_not_allowed", changed), 1s);
  EXPECT_EQ(statuses(key, kLlama), (std::vector<std::string>{"ok", "ok"}));
  set(id, {"--models", "inherit", "--endpoints", "embeddings"});
  const auto again = Clock::now();
  EXPECT_LT(until_every_instance(answer_of(key), "endpoint_not_allowed", again), 1s);
}

TEST_F(KeyPolicyCluster, AConcurrencyCapHoldsAcrossInstancesAndASlotComesBackWhenItsRequestEnds) {
  auto [id, key] = create_key(env, "alice", {"--max-concurrent", "2"});
  start_two();
  auto a = hold_stream(instances[0]->port(), key);
  auto b = hold_stream(instances[1]->port(), key);
  for (auto& s : instances) {
    const auto r = post_as(s->port(), key, "/chat/completions", kLlama);
    EXPECT_EQ(r->status, 429);
    EXPECT_EQ(code_of(r), "concurrency_limit");
    EXPECT_EQ(r->header("retry-after"), "1");
  }
  for (const auto& c : calls_for_every_group())
    EXPECT_EQ(code_of(post_as(instances[1]->port(), key, c.path, c.body, c.content_type)), "concurrency_limit")
        << c.path;
  // A key without a cap is not held up by this one's.
  EXPECT_EQ(post_as(instances[0]->port(), this->key, "/chat/completions", kLlama)->status, 200);
  a->reset();  // the client goes: its stream ends and its slot is given back
  EXPECT_TRUE(wait_until([&] { return post_as(instances[1]->port(), key, "/chat/completions", kLlama)->status == 200; },
                         5s));
  EXPECT_GE(instances[0]->metric("lagoon_concurrency_refused_total"), 1);
  EXPECT_GE(instances[1]->metric("lagoon_concurrency_refused_total"), 1);
  wait_until([&] { return std::stoi(db.scalar("SELECT count(*) FROM usage_records WHERE outcome = 'concurrency_limited'")) >= 2; },
             5s);
  EXPECT_GE(std::stoi(db.scalar("SELECT count(*) FROM usage_records WHERE outcome = 'concurrency_limited' AND "
                                "status_code = 429")),
            2);
}

TEST_F(KeyPolicyCluster, ACrashedInstancesSlotsComeBackWithinTheLease) {
  constexpr auto kLease = 2000ms;
  auto [id, key] = create_key(env, "alice", {"--max-concurrent", "2"});
  start_two({{"LAGOON_CONCURRENCY_LEASE_MS", "2000"}});
  auto a1 = hold_stream(instances[0]->port(), key);
  auto a2 = hold_stream(instances[0]->port(), key);
  EXPECT_EQ(code_of(post_as(instances[1]->port(), key, "/chat/completions", kLlama)), "concurrency_limit");
  // Held past several leases: the renewals keep a long stream's slot.
  std::this_thread::sleep_for(kLease * 2);
  EXPECT_EQ(code_of(post_as(instances[1]->port(), key, "/chat/completions", kLlama)), "concurrency_limit");
  ::kill(instances[0]->process().pid(), SIGKILL);
  const auto killed = Clock::now();
  EXPECT_TRUE(wait_until([&] { return post_as(instances[1]->port(), key, "/chat/completions", kLlama)->status == 200; },
                         10s));
  const auto back = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed);
  std::printf("slots of the killed instance back after %lld ms (lease %lld ms)\n", static_cast<long long>(back.count()),
              static_cast<long long>(kLease.count()));
  EXPECT_LT(back, kLease + 1s) << "the dead instance's slots lapse within one lease";
}

TEST_F(KeyPolicyCluster, ARotatedKeyWorksThroughItsGraceWithAHeaderThenStops) {
  auto [old_id, old_key] = create_key(env, "alice", {"--models", "llama-*", "--tags", R"({"team":"search"})"});
  start_two();
  ASSERT_EQ(statuses(old_key), (std::vector<std::string>{"ok", "ok"}));  // cached on both
  const auto rotated = lagoon_cli({"keys", "rotate", std::to_string(old_id), "--grace", "1h"}, env);
  ASSERT_EQ(rotated.code, 0) << rotated.err;
  const auto rotated_at = Clock::now();
  const auto out = json::parse(rotated.out);
  const std::string new_key = out["key"];
  const std::string revoked_at = out["old_key_revoked_at"];
  // The old one still works, and says until when — on every instance within a second of the rotation.
  auto header_on = [](const std::string& k) {
    return [k](LagoonServer& s) {
      const auto r = post_as(s.port(), k, "/chat/completions", kLlama);
      return r ? std::string(r->header("x-lagoon-key-rotating")).substr(0, 19) : std::string("no answer");
    };
  };
  // The header is the revocation time as `keys rotate` printed it (compared to the second).
  EXPECT_LT(until_every_instance(header_on(old_key), revoked_at.substr(0, 19), rotated_at), 1s);
  for (auto& s : instances) EXPECT_EQ(header_on(new_key)(*s), "");
  // The new key works at once and carries the old one's policy.
  EXPECT_EQ(statuses(new_key), (std::vector<std::string>{"ok", "ok"}));
  EXPECT_EQ(statuses(new_key, kQwen), (std::vector<std::string>{"model_not_allowed", "model_not_allowed"}));
  // Streams carry it too.
  const auto streamed = post_as(instances[0]->port(), old_key, "/chat/completions", kLlamaStream);
  EXPECT_FALSE(streamed->header("x-lagoon-key-rotating").empty());
  // Past the grace (the instances' clock moved beyond it), the old key is refused as revoked; the new works.
  set_clock(std::stod(db.scalar("SELECT extract(epoch FROM revoked_at) FROM api_keys WHERE id = " +
                                std::to_string(old_id))));
  EXPECT_EQ(statuses(old_key), (std::vector<std::string>{"invalid_api_key", "invalid_api_key"}));
  EXPECT_EQ(statuses(new_key), (std::vector<std::string>{"ok", "ok"}));
}

}  // namespace
}  // namespace lagoon::test
