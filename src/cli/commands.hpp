// The commands that work on Postgres (users, keys, budgets, prices, usage): from a parsed Command to the
// admin operation it names, shared with the admin API (admin/operations.hpp). Internal to src/cli.
// Blocking; the CLI's one thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <pqxx/connection>

#include "lagoon/admin/operations.hpp"
#include "lagoon/cli/cli.hpp"
#include "lagoon/config/config.hpp"

namespace lagoon::cli {

// An integer option or argument in lo..hi; throws UsageError naming `what`.
std::int64_t parse_int(const std::string& what, const std::string& s, std::int64_t lo, std::int64_t hi);

std::optional<std::string> option(const Command& cmd, const std::string& name);

// The operation a command names, on one connection. Throws UsageError, db::AccountsError, pqxx errors.
admin::Outcome run_operation(const Command& cmd, const config::Config& cfg, pqxx::connection& conn);

// One JSON document on stdout.
void print(const nlohmann::json& out);

// Prints an operation's answer, then tells the running instances what it changed; the exit code (1 when
// they could not be told: the change is made, and the message says how to repeat it).
int report(const Command& cmd, const config::Config& cfg, const admin::Outcome& outcome);

// `prices refresh`: Venice's model list fetched now (GET {upstream}/models?type=all, with the upstream
// key, within kRefreshDeadline), judged against the newest stored table as the gateway's refresher
// judges it (money::judge_model_list), stored and announced when good. Prints {"result", "version",
// "models", "fetched_models"}; the exit code (1, with the reason on stderr, when nothing was stored
// because the list could not be fetched or was refused).
int refresh_prices(const Command& cmd, const config::Config& cfg, pqxx::connection& conn);

}  // namespace lagoon::cli
