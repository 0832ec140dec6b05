#include <gtest/gtest.h>

#include "lagoon/cli/cli.hpp"

using lagoon::cli::parse;
using lagoon::cli::UsageError;

TEST(CliParse, CommandsAndOptions) {
  auto c = parse({"keys", "create", "--user", "alice", "--rpm=60", "--config", "f.json"});
  EXPECT_EQ(c.name, "keys create");
  EXPECT_EQ(c.options.at("user"), "alice");
  EXPECT_EQ(c.options.at("rpm"), "60");
  EXPECT_EQ(c.config_file, "f.json");
  auto r = parse({"keys", "revoke", "42"});
  EXPECT_EQ(r.name, "keys revoke");
  ASSERT_EQ(r.positional.size(), 1u);
  EXPECT_EQ(r.positional[0], "42");
  EXPECT_EQ(parse({"serve"}).name, "serve");
  auto u = parse({"keys", "update", "7", "--rpm", "default", "--tpm", "10"});
  EXPECT_EQ(u.name, "keys update");
  EXPECT_EQ(u.positional, std::vector<std::string>{"7"});
  EXPECT_EQ(parse({"usage", "--key", "7", "--from", "2026-01-01"}).name, "usage");
  EXPECT_EQ(parse({"users", "get", "alice"}).name, "users get");
  EXPECT_EQ(parse({"keys", "get", "7"}).name, "keys get");
  EXPECT_EQ(parse({"--version"}).name, "--version");
  EXPECT_EQ(parse({"keys", "list", "--help"}).name, "--help");
}

TEST(CliParse, BadUsageIsRefused) {
  const std::vector<std::vector<std::string>> bad = {
      {},
      {"frobnicate"},
      {"users"},
      {"users", "create"},                              // needs --name
      {"users", "create", "--name"},                    // value missing
      {"keys", "create", "--user", "a", "--colour", "x"},
      {"keys", "update"},                               // needs the id
      {"keys", "update", "7", "--user", "a"},           // not an update option
      {"usage", "7"},                                   // takes options only
      {"users", "get"},
      {"keys", "revoke"},                               // needs ID
      {"keys", "revoke", "1", "2"},
      {"keys", "create", "--user", "a", "--user", "b"},
      {"serve", "extra"},
  };
  for (const auto& args : bad) EXPECT_THROW(parse(args), UsageError) << ::testing::PrintToString(args);
}
