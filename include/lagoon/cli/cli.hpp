// The `lagoon` command line: argument parsing (pure, unit-tested) and dispatch to the operations.
// Exit codes: 0 ok, 1 runtime failure (message on stderr), 2 bad usage or bad configuration.
// Output of every command except `serve` is one JSON document on stdout.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lagoon/db/accounts.hpp"

namespace lagoon::cli {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Command {
  std::string name;                             // "serve", "migrate", "users create", "keys create", …
  std::optional<std::string> config_file;       // --config
  std::map<std::string, std::string> options;   // other --flags, without the dashes
  std::vector<std::string> positional;          // e.g. the key id of `keys revoke`
  std::map<std::string, std::vector<std::string>> repeated;  // flags a command takes more than once (--tag), in order
};

// Parses argv[1..]. "--help"/"--version" come back as commands of those names. Throws UsageError.
Command parse(const std::vector<std::string>& args);

// --budget USD|none and --period total|daily|monthly (keys create|update, users update): nullopt when
// neither is given. Throws UsageError for an amount that is not a budget (admin::kBudgetRule), an unknown
// period, or a period beside `none`.
std::optional<db::BudgetChange> budget_change(const Command& cmd);

// --models, --endpoints, --expires, --max-concurrent (keys create|update, users create|update): absent
// flags change nothing. `--models ''`, `--models inherit`, the same of --endpoints, `--expires never`
// and `--max-concurrent inherit` unset the field (NULL: a key inherits its user's, a user restricts
// nothing). Values are read by db's policy readers; throws UsageError naming the flag.
db::PolicyChanges policy_changes(const Command& cmd);
// --tags JSON: a JSON object ({} for none); nullopt when not given. Throws UsageError.
std::optional<nlohmann::json> tags_option(const Command& cmd);
// --grace DURATION of `keys rotate` (db::grace_seconds; "0" = at once): db::kDefaultGraceSeconds when
// not given. Throws UsageError.
std::int64_t grace_option(const Command& cmd);
// --tag NAME=VALUE, each: the usage report's tag filter. Throws UsageError for a malformed or repeated name.
std::map<std::string, std::string> tag_filter(const Command& cmd);

std::string usage_text();

// Runs the whole program; returns the process exit code.
int run(int argc, char** argv);

}  // namespace lagoon::cli
