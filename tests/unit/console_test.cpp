// The operator console's pure parts: its route, the embedded files and the headers that guard them, the
// admin calls behind its pages, the CSV of a series, and LAGOON_CONSOLE_LISTEN.
#include <gtest/gtest.h>

#include <set>

#include "lagoon/admin/api.hpp"
#include "lagoon/admin/operations.hpp"
#include "lagoon/config/config.hpp"
#include "lagoon/http/routes.hpp"
#include "lagoon/routes/console.hpp"

using namespace lagoon;
using Kind = http::RouteMatch::Kind;
using nlohmann::json;

TEST(ConsoleRoute, EverythingUnderConsoleIsOneOpenGetRoute) {
  for (auto t : {"/console", "/console/", "/console/app.js", "/console/js/x.js?v=1", "/console/../admin/v1"}) {
    const auto m = http::match_route("GET", t);
    EXPECT_EQ(m.kind, Kind::found) << t;
    EXPECT_EQ(m.route, http::Route::console) << t;
    EXPECT_EQ(m.access, http::Access::open) << t;
    EXPECT_EQ(m.label, "/console") << t;
  }
  const auto post = http::match_route("POST", "/console/");
  EXPECT_EQ(post.kind, Kind::method_not_allowed);
  EXPECT_EQ(post.allow, "GET");
  EXPECT_EQ(http::match_route("GET", "/consoles").kind, Kind::not_found);
}

TEST(ConsoleFiles, EachIsServedWithItsTypeAndTheGuards) {
  const auto& files = routes::console_files();
  ASSERT_FALSE(files.empty());
  std::set<std::string_view> names;
  for (const auto& f : files) {
    names.insert(f.path);
    EXPECT_FALSE(f.body.empty()) << f.path;
    const auto r = routes::console_reply("/console/" + std::string(f.path), true);
    EXPECT_EQ(r.status, 200u) << f.path;
    EXPECT_EQ(r.content_type, f.content_type) << f.path;
    EXPECT_EQ(r.body, f.body) << f.path;
    EXPECT_EQ(r.header("Content-Security-Policy"), routes::kConsoleSecurityPolicy);
    EXPECT_EQ(r.header("X-Frame-Options"), "DENY");
    EXPECT_EQ(r.header("Referrer-Policy"), "no-referrer");
    EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff");
    // Nothing a page would run may come from elsewhere: no http(s) URL to another origin is loaded.
    if (f.path.ends_with(".html")) {
      EXPECT_EQ(f.body.find("<script>"), std::string_view::npos) << "inline script in " << f.path;
      EXPECT_EQ(f.body.find(" style=\""), std::string_view::npos) << "inline style in " << f.path;
      EXPECT_EQ(f.body.find("src=\"http"), std::string_view::npos) << f.path;
    }
  }
  EXPECT_TRUE(names.count("index.html"));
  const auto index = routes::console_reply("/console/", true);
  EXPECT_EQ(index.status, 200u);
  EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
  EXPECT_NE(index.body.find("<html"), std::string::npos);
}

TEST(ConsoleFiles, TheBareNameRedirectsAndTheRestIs404) {
  const auto bare = routes::console_reply("/console?x=1", true);
  EXPECT_EQ(bare.status, 308u);
  EXPECT_EQ(bare.header("Location"), "/console/");
  for (auto t : {"/console/nope.js", "/console/../admin/v1/keys", "/console/package.json", "/console//index.html"}) {
    const auto r = routes::console_reply(t, true);
    EXPECT_EQ(r.status, 404u) << t;
    EXPECT_EQ(r.header("X-Frame-Options"), "DENY") << t;
  }
  // Off (no admin token, or the console has a listener of its own): nothing at all.
  for (auto t : {"/console", "/console/", "/console/index.html"})
    EXPECT_EQ(routes::console_reply(t, false).status, 404u);
}

namespace {

admin::Call call(std::string_view target) { return std::get<admin::Call>(admin::parse_call("GET", target, "")); }
admin::ApiError refused(std::string_view target) {
  return std::get<admin::ApiError>(admin::parse_call("GET", target, ""));
}

}  // namespace

TEST(ConsoleCalls, ListingsTakeTheirFilters) {
  auto u = call("/admin/v1/users?q=al&status=inactive&limit=5&offset=10");
  EXPECT_EQ(u.op, admin::Call::Op::list_users);
  EXPECT_EQ(u.users.text, "al");
  EXPECT_EQ(u.users.active, false);
  EXPECT_EQ(u.users.limit, 5);
  EXPECT_EQ(u.users.offset, 10);
  EXPECT_EQ(call("/admin/v1/users").users.limit, db::kDefaultPageSize);
  auto k = call("/admin/v1/keys?user=bob&q=sk-&status=expired&tag=team:a&tag=env:prod");
  EXPECT_EQ(k.op, admin::Call::Op::find_keys);
  EXPECT_EQ(k.keys.user_ref, "bob");
  EXPECT_EQ(k.keys.text, "sk-");
  EXPECT_EQ(k.keys.status, db::KeyStatus::expired);
  EXPECT_EQ(k.keys.tags, (std::map<std::string, std::string>{{"env", "prod"}, {"team", "a"}}));
  EXPECT_FALSE(call("/admin/v1/keys").keys.user_ref);
  // ?user= alone is the CLI's `keys list` document, as before the listings.
  const auto old = call("/admin/v1/keys?user=bob");
  EXPECT_EQ(old.op, admin::Call::Op::list_keys);
  EXPECT_EQ(old.user_ref, "bob");
  EXPECT_EQ(call("/admin/v1/keys?user=bob&limit=100").op, admin::Call::Op::find_keys);
  for (const auto& [target, param] :
       std::vector<std::pair<std::string, std::string>>{{"/admin/v1/users?status=gone", "status"},
                                                        {"/admin/v1/users?limit=0", "limit"},
                                                        {"/admin/v1/users?limit=1001", "limit"},
                                                        {"/admin/v1/users?offset=-1", "offset"},
                                                        {"/admin/v1/users?limit=1x", "limit"},
                                                        {"/admin/v1/users?user=a", "user"},
                                                        {"/admin/v1/keys?status=active&status=revoked", "status"},
                                                        {"/admin/v1/keys?tag=x", "tag"},
                                                        {"/admin/v1/keys?user=", "user"}}) {
    const auto e = refused(target);
    EXPECT_EQ(e.kind, http::ErrorKind::invalid_request) << target;
    EXPECT_EQ(e.param, param) << target << ": " << e.message;
  }
  EXPECT_EQ(std::get<admin::ApiError>(admin::parse_call("PUT", "/admin/v1/users", "")).allow, "GET, POST");
}

TEST(ConsoleCalls, SeriesTakeTheirQuery) {
  auto s = call(
      "/admin/v1/usage/series?user=alice&from=2026-11-01&to=2026-11-02T00:00:00Z&bucket=day&by=key&top=3"
      "&tag=team:a&format=csv");
  EXPECT_EQ(s.op, admin::Call::Op::usage_series);
  EXPECT_EQ(s.series.scope.user_ref, "alice");
  EXPECT_EQ(s.series.scope.from, "2026-11-01");
  EXPECT_EQ(s.series.scope.by, db::Grouping::key);
  EXPECT_EQ(s.series.bucket, db::Bucket::day);
  EXPECT_EQ(s.series.top, 3);
  EXPECT_TRUE(s.csv);
  auto plain = call("/admin/v1/usage/series");
  EXPECT_EQ(plain.series.scope.by, db::Grouping::model);
  EXPECT_EQ(plain.series.bucket, db::Bucket::hour);
  EXPECT_EQ(plain.series.top, db::kDefaultSeries);
  EXPECT_FALSE(plain.csv);
  EXPECT_FALSE(call("/admin/v1/usage/series?by=none").series.scope.by);
  EXPECT_EQ(call("/admin/v1/metrics").op, admin::Call::Op::metrics);
  EXPECT_EQ(std::get<admin::ApiError>(admin::parse_call("POST", "/admin/v1/usage/series", "")).allow, "GET");
  EXPECT_EQ(refused("/admin/v1/usage/other").kind, http::ErrorKind::not_found);
}

TEST(ConsoleCsv, FieldsAreQuotedAndFormulasDefused) {
  const json s = json::parse(R"J({"series":[{"name":"7","label":"a, \"b\"","other":false},
      {"name":"8","label":"=HYPERLINK(\"x\")","other":false},{"name":null,"label":"other","other":true}],
      "rows":[{"time":"2026-11-01T00:00:00Z","series":0,"requests":2,"prompt_tokens":3,"completion_tokens":4,
               "total_tokens":7,"cost_usd":"0.5","unpriced_requests":1},
              {"time":"2026-11-01T00:00:00Z","series":1,"requests":1,"prompt_tokens":0,"completion_tokens":0,
               "total_tokens":0,"cost_usd":"0","unpriced_requests":0},
              {"time":"2026-11-01T01:00:00Z","series":2,"requests":1,"prompt_tokens":0,"completion_tokens":0,
               "total_tokens":0,"cost_usd":"1","unpriced_requests":0}]
})J");
  EXPECT_EQ(admin::series_csv(s),
            "time,series,label,requests,prompt_tokens,completion_tokens,total_tokens,cost_usd,unpriced_requests\r\n"
            "2026-11-01T00:00:00Z,7,\"a, \"\"b\"\"\",2,3,4,7,0.5,1\r\n"
            "2026-11-01T00:00:00Z,8,\"'=HYPERLINK(\"\"x\"\")\",1,0,0,0,0,0\r\n"
            "2026-11-01T01:00:00Z,other,other,1,0,0,0,1,0\r\n");
}

TEST(ConsoleConfig, ItsOwnListenerNeedsTheAdminTokenAndAnotherAddress) {
  const config::Environment token{{"LAGOON_ADMIN_TOKEN", "0123456789abcdef0123"}};
  auto env = token;
  env["LAGOON_CONSOLE_LISTEN"] = "127.0.0.1:9090";
  const auto c = config::load("", env, 2);
  ASSERT_TRUE(c.console_listen);
  EXPECT_EQ(c.console_listen->port, 9090);
  EXPECT_FALSE(config::load("", token, 2).console_listen) << "default: the console is on the main listener";
  auto message = [](const config::Environment& e) {
    try {
      config::load("", e, 2);
    } catch (const config::ConfigError& err) {
      return std::string(err.what());
    }
    return std::string();
  };
  EXPECT_NE(
      message({{"LAGOON_CONSOLE_LISTEN", "127.0.0.1:9090"}}).find("LAGOON_CONSOLE_LISTEN: needs LAGOON_ADMIN_TOKEN"),
      std::string::npos);
  env["LAGOON_CONSOLE_LISTEN"] = "127.0.0.1:8080";
  EXPECT_NE(message(env).find("must differ from LAGOON_LISTEN"), std::string::npos);
  env["LAGOON_CONSOLE_LISTEN"] = "9090";
  EXPECT_NE(message(env).find("LAGOON_CONSOLE_LISTEN: expected host:port"), std::string::npos);
}
