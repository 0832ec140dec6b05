#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lagoon/config/config.hpp"
#include "lagoon/config/url.hpp"

using lagoon::config::ConfigError;
using lagoon::config::Environment;
using lagoon::config::load;

namespace {

std::string error_of(const std::string& file, const Environment& env) {
  try {
    load(file, env, 2);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Config, DefaultsMatchTheInterface) {
  auto c = load("", {}, 8);
  EXPECT_EQ(c.listen.host, "127.0.0.1");
  EXPECT_EQ(c.listen.port, 8080);
  EXPECT_EQ(c.threads, 8u);
  EXPECT_EQ(c.db_pool_size, 4u);
  EXPECT_EQ(c.redis_url, "redis://127.0.0.1:6379/0");
  EXPECT_EQ(c.upstream_url, "https://api.venice.ai/api/v1");
  EXPECT_EQ(c.log_level, "info");
  EXPECT_FALSE(c.admin_token.has_value());
  EXPECT_EQ(c.max_header_bytes, 16u * 1024);
  EXPECT_EQ(c.max_body_bytes, 4u * 1024 * 1024);
  EXPECT_EQ(c.max_buffered_body_bytes, 256u * 1024 * 1024);
  EXPECT_EQ(c.max_request_line_bytes, 8u * 1024);
  EXPECT_EQ(c.header_timeout, std::chrono::seconds(10));
}

TEST(Config, EnvironmentOverridesTheFile) {
  auto c = load(R"({"db_pool_size": 8, "listen": "0.0.0.0:9000"})", {{"LAGOON_DB_POOL_SIZE", "16"}}, 2);
  EXPECT_EQ(c.db_pool_size, 16u);
  EXPECT_EQ(c.listen.host, "0.0.0.0");
  EXPECT_EQ(c.listen.port, 9000);
}

TEST(Config, BadValuesNameTheFieldAndTheReason) {
  struct Case {
    std::string file;
    Environment env;
    std::string message;
  } cases[] = {
      {"", {{"LAGOON_DB_POOL_SIZE", "x"}}, "LAGOON_DB_POOL_SIZE: expected an integer 1..1024, got \"x\""},
      {"", {{"LAGOON_DB_POOL_SIZE", "0"}}, "LAGOON_DB_POOL_SIZE: expected an integer 1..1024, got \"0\""},
      {"", {{"LAGOON_DB_POOL_SIZE", "4x"}}, "LAGOON_DB_POOL_SIZE: expected an integer 1..1024, got \"4x\""},
      {"", {{"LAGOON_DB_POOL_SIZE", "-1"}}, "LAGOON_DB_POOL_SIZE: expected an integer 1..1024, got \"-1\""},
      {"", {{"LAGOON_THREADS", ""}}, "LAGOON_THREADS: expected an integer 0..256, got \"\""},
      {R"({"db_pool_size": "8"})", {}, "db_pool_size: expected an integer 1..1024, got \"8\""},
      {R"({"db_pool_size": 2.5})", {}, "db_pool_size: expected an integer 1..1024, got 2.5"},
      {"", {{"LAGOON_LISTEN", "8080"}}, "LAGOON_LISTEN: expected host:port, got \"8080\""},
      {"", {{"LAGOON_LISTEN", "localhost:99999"}}, "LAGOON_LISTEN: expected host:port, got \"localhost:99999\""},
      {"", {{"LAGOON_LOG_LEVEL", "loud"}}, "LAGOON_LOG_LEVEL: expected one of debug, info, warn, error, got \"loud\""},
      {"", {{"LAGOON_UPSTREAM_URL", "ftp://x"}},
       "LAGOON_UPSTREAM_URL: expected a URL starting with http:// or https://, got \"ftp://x\""},
      {"", {{"LAGOON_REDIS_URL", "localhost:6379"}},
       "LAGOON_REDIS_URL: expected a URL starting with redis://, got \"localhost:6379\""},
      {"", {{"LAGOON_KEY_PEPPER", "short"}},
       "LAGOON_KEY_PEPPER: must be at least 32 characters (e.g. `openssl rand -hex 32`)"},
      {R"({"no_such": 1})", {}, "no_such: unknown setting"},
      {R"({"": 1})", {}, "config file key \"\": unknown setting"},
      {"", {{"LAGOON_DB_PREPARED_STATEMENTS", "maybe"}}, "LAGOON_DB_PREPARED_STATEMENTS: expected true or false, got \"maybe\""},
      {R"({"db_prepared_statements": 1})", {}, "db_prepared_statements: expected true or false, got 1"},
      {R"({"key_pepper": "0123456789abcdef0123456789abcdef"})", {},
       "key_pepper: secrets are read only from the environment (LAGOON_KEY_PEPPER)"},
      {R"({"admin_token": "x"})", {}, "admin_token: secrets are read only from the environment (LAGOON_ADMIN_TOKEN)"},
      {"[1]", {}, "config file: expected a JSON object"},
      {R"({"max_request_line_bytes": 20000})", {}, "max_request_line_bytes: must not exceed max_header_bytes"},
      {"", {{"LAGOON_MAX_BUFFERED_BODY_BYTES", "2048"}}, "max_buffered_body_bytes: must not be less than max_body_bytes"},
  };
  for (const auto& c : cases) EXPECT_EQ(error_of(c.file, c.env), c.message) << c.file;
}

TEST(Config, PreparedStatementsAreOnUnlessSwitchedOff) {
  EXPECT_TRUE(load("", {}, 2).db_prepared_statements);
  EXPECT_FALSE(load("", {{"LAGOON_DB_PREPARED_STATEMENTS", "false"}}, 2).db_prepared_statements);
  EXPECT_FALSE(load("", {{"LAGOON_DB_PREPARED_STATEMENTS", "0"}}, 2).db_prepared_statements);
  EXPECT_FALSE(load(R"({"db_prepared_statements": false})", {}, 2).db_prepared_statements);
  EXPECT_TRUE(load(R"({"db_prepared_statements": false})", {{"LAGOON_DB_PREPARED_STATEMENTS", "1"}}, 2).db_prepared_statements);
}

TEST(Config, InvalidJsonIsAnError) {
  EXPECT_NE(error_of("{", {}).find("config file: invalid JSON"), std::string::npos);
  // Found by the config fuzz target: a number nlohmann cannot hold was an uncaught out_of_range.
  EXPECT_NE(error_of("{\"threads\": 44e4444}", {}).find("config file: invalid JSON"), std::string::npos);
}

TEST(Config, CommentKeysAreIgnored) {
  auto c = load(R"({"// db_pool_size": "how many connections", "db_pool_size": 3})", {}, 1);
  EXPECT_EQ(c.db_pool_size, 3u);
}

TEST(Config, VeniceApiKeyIsTheFallbackUpstreamCredential) {
  EXPECT_EQ(load("", {{"VENICE_API_KEY", "v"}}, 1).upstream_api_key, "v");
  EXPECT_EQ(load("", {{"VENICE_API_KEY", "v"}, {"LAGOON_UPSTREAM_API_KEY", "l"}}, 1).upstream_api_key, "l");
}

TEST(Config, DurationsAreMilliseconds) {
  auto c = load("", {{"LAGOON_HEADER_TIMEOUT_MS", "1500"}, {"LAGOON_DRAIN_TIMEOUT_MS", "0"}}, 1);
  EXPECT_EQ(c.header_timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(c.drain_timeout, std::chrono::milliseconds(0));
}

TEST(Config, UpstreamUrlLosesTrailingSlash) {
  EXPECT_EQ(load("", {{"LAGOON_UPSTREAM_URL", "http://127.0.0.1:9/api/v1/"}}, 1).upstream_url,
            "http://127.0.0.1:9/api/v1");
}

TEST(Config, SentinelsAreAListOfHostPortsThatNeedsAMasterName) {
  using lagoon::config::HostPort;
  const auto c = load(R"({"redis_sentinels": "10.0.0.1:26379, sentinel-b:26380,[::1]:26381,"})",
                      {{"LAGOON_REDIS_MASTER_NAME", "cache"}, {"LAGOON_REDIS_SENTINEL_PASSWORD", "s3cret"}}, 1);
  EXPECT_EQ(c.redis_sentinels, (std::vector<HostPort>{{"10.0.0.1", 26379}, {"sentinel-b", 26380}, {"::1", 26381}}));
  EXPECT_EQ(c.redis_master_name, "cache");
  EXPECT_EQ(c.redis_sentinel_password, "s3cret");
  EXPECT_TRUE(load("", {}, 1).redis_sentinels.empty());
  EXPECT_EQ(error_of("", {{"LAGOON_REDIS_SENTINELS", "10.0.0.1:26379"}}),
            "LAGOON_REDIS_MASTER_NAME: is required with LAGOON_REDIS_SENTINELS");
  EXPECT_EQ(error_of("", {{"LAGOON_REDIS_MASTER_NAME", "cache"}}),
            "LAGOON_REDIS_SENTINELS: is required with LAGOON_REDIS_MASTER_NAME");
  EXPECT_EQ(error_of("", {{"LAGOON_REDIS_SENTINELS", "10.0.0.1:26379,10.0.0.2"}, {"LAGOON_REDIS_MASTER_NAME", "m"}}),
            "LAGOON_REDIS_SENTINELS: expected host:port, got \"10.0.0.2\"");
  EXPECT_EQ(error_of(R"({"redis_sentinel_password": "x"})", {}),
            "redis_sentinel_password: secrets are read only from the environment (LAGOON_REDIS_SENTINEL_PASSWORD)");
}

TEST(Config, RequiredSettingsAreCheckedPerCommand) {
  auto c = load("", {}, 1);
  EXPECT_THROW(lagoon::config::require_database(c), ConfigError);
  EXPECT_THROW(lagoon::config::require_pepper(c), ConfigError);
}

TEST(Url, RedisUrlParts) {
  auto e = lagoon::config::parse_redis_url("redis://:secret@10.1.2.3:6380/2");
  EXPECT_EQ(e.host, "10.1.2.3");
  EXPECT_EQ(e.port, 6380);
  EXPECT_EQ(e.password, "secret");
  EXPECT_EQ(e.db, 2u);
  auto d = lagoon::config::parse_redis_url("redis://localhost");
  EXPECT_EQ(d.port, 6379);
  EXPECT_EQ(d.db, 0u);
  EXPECT_THROW(lagoon::config::parse_redis_url("redis://localhost/abc"), ConfigError);
  EXPECT_THROW(lagoon::config::parse_redis_url("http://localhost"), ConfigError);
}

TEST(Url, HttpUrlParts) {
  auto e = lagoon::config::parse_http_url("https://api.venice.ai/api/v1");
  EXPECT_TRUE(e.tls);
  EXPECT_EQ(e.host, "api.venice.ai");
  EXPECT_EQ(e.port, 443);
  EXPECT_EQ(e.base_path, "/api/v1");
  auto p = lagoon::config::parse_http_url("http://127.0.0.1:8090/");
  EXPECT_FALSE(p.tls);
  EXPECT_EQ(p.port, 8090);
  EXPECT_EQ(p.base_path, "");
}

namespace {
std::string example_file() {
  std::ifstream in(LAGOON_SOURCE_DIR "/config/lagoon.example.json");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

TEST(ConfigExample, DocumentsEverySettingWithItsEnvironmentVariable) {
  const auto doc = nlohmann::json::parse(example_file());
  for (const auto& n : lagoon::config::setting_names()) {
    ASSERT_TRUE(doc.contains("// " + n.key)) << n.key << " is not documented";
    EXPECT_NE(doc["// " + n.key].get<std::string>().find(n.env), std::string::npos) << n.key;
    EXPECT_EQ(doc.contains(n.key), !n.secret) << n.key;
  }
}

TEST(ConfigExample, ItsValuesAreTheDefaults) {
  auto from_example = load(example_file(), {}, 2);
  auto defaults = load("", {}, 2);
  defaults.database_url = from_example.database_url;  // the one required setting has no default
  EXPECT_TRUE(from_example == defaults);
}

// A password in a URL setting never reaches a message: config errors are printed and logged.
TEST(Config, ErrorsAboutAUrlNeverShowItsPassword) {
  const std::vector<std::pair<Environment, std::string>> cases = {
      {{{"LAGOON_REDIS_URL", "rediss://:hunter2@cache:6380/0"}},
       "LAGOON_REDIS_URL: expected a URL starting with redis://, got \"rediss://:***@cache:6380/0\""},
      {{{"LAGOON_REDIS_URL", "default:hunter2@cache:6379"}},
       "LAGOON_REDIS_URL: expected a URL starting with redis://, got \"***@cache:6379\""},
      {{{"LAGOON_UPSTREAM_URL", "ftp://user:hunter2@example.com/x"}},
       "LAGOON_UPSTREAM_URL: expected a URL starting with http:// or https://, got \"ftp://user:***@example.com/x\""},
  };
  for (const auto& [env, message] : cases) EXPECT_EQ(error_of("", env), message);
  EXPECT_EQ(error_of(R"({"redis_url": ["redis://:hunter2@cache"]})", {}),
            "redis_url: expected a string, got [\"redis://:***@cache\"]");
}

TEST(Config, CredentialsAreRedactedFromAnyText) {
  using lagoon::config::redact_credentials_of;
  using lagoon::config::redact_urls;
  EXPECT_EQ(redact_urls("redis://:pw@h:1/0 and postgresql://u:p%40ss@db/x?sslmode=require"),
            "redis://:***@h:1/0 and postgresql://u:***@db/x?sslmode=require");
  EXPECT_EQ(redact_urls("redis://h:6379/0, http://user@h/ and no URL"), "redis://h:6379/0, http://user@h/ and no URL");
  // libpq quotes the piece of the URL it cannot read, password and all.
  EXPECT_EQ(redact_credentials_of("postgresql://u:s3cr%zzet@127.0.0.1/db",
                                  "invalid percent-encoded token: \"s3cr%zzet\""),
            "invalid percent-encoded token: \"***\"");
  EXPECT_EQ(redact_credentials_of("postgresql://u:p%40ss@db/x", "password p@ss and p%40ss"), "password *** and ***");
  EXPECT_EQ(redact_credentials_of("host=db password='it\\'s s3cret' user=u", "saw it's s3cret"), "saw ***");
  EXPECT_EQ(redact_credentials_of("host=db password=s3cret user=u", "saw s3cret!"), "saw ***!");
  EXPECT_EQ(redact_credentials_of("postgresql://db/x", "nothing to hide"), "nothing to hide");
}
