// The Server fixture shared by http_server_test.cpp and http_reading_test.cpp: a migrated database and
// `lagoon serve` started against it with extra settings; and what every error response must look like
// (the OpenAI error shape, JSON, with a request id).
// Not thread-safe; each test owns its fixture.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "support/environment.hpp"

namespace lagoon::test {

inline void expect_openai_error(const HttpResponse& r, int status, const std::string& code) {
  EXPECT_EQ(r.status, status);
  EXPECT_EQ(r.header("content-type"), "application/json");
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.body;
  ASSERT_TRUE(j["error"].is_object()) << r.body;
  EXPECT_EQ(j["error"]["code"], code);
  EXPECT_TRUE(j["error"]["message"].is_string());
  EXPECT_TRUE(j["error"]["type"].is_string());
  EXPECT_TRUE(j["error"].contains("param") && j["error"]["param"].is_null());
  EXPECT_FALSE(r.header("x-request-id").empty());
}

class Server : public ::testing::Test {
 protected:
  Server() : env(lagoon_env(db)) {}
  void SetUp() override { ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0); }
  LagoonServer& start(Env extra = {}) {
    for (auto& [k, v] : extra) env[k] = v;
    server = std::make_unique<LagoonServer>(env);
    return *server;
  }
  TestDatabase db;
  Env env;
  std::unique_ptr<LagoonServer> server;
};

}  // namespace lagoon::test
