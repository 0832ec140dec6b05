#include "lagoon/cli/cli.hpp"

#include <charconv>
#include <chrono>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "commands.hpp"
#include "lagoon/app/run.hpp"
#include "lagoon/config/config.hpp"
#include "lagoon/db/accounts.hpp"
#include "lagoon/db/connection.hpp"
#include "lagoon/db/migrations.hpp"

namespace lagoon::cli {
namespace {

using nlohmann::json;

struct Spec {
  std::set<std::string> required;
  std::set<std::string> optional;
  std::size_t positional = 0;
};

// The policy flags of keys and users (operations.cpp reads them).
#define LAGOON_POLICY_FLAGS "models", "endpoints", "expires", "max-concurrent"

const std::map<std::string, Spec>& specs() {
  static const std::map<std::string, Spec> all = {
      {"serve", {}},
      {"migrate", {}},
      {"users create", {{"name"}, {LAGOON_POLICY_FLAGS}, 0}},
      {"users deactivate", {{}, {}, 1}},
      {"users get", {{}, {}, 1}},
      {"users update", {{}, {"budget", "period", LAGOON_POLICY_FLAGS}, 1}},
      {"keys create", {{"user"}, {"name", "rpm", "tpm", "budget", "period", LAGOON_POLICY_FLAGS, "tags"}, 0}},
      {"keys revoke", {{}, {}, 1}},
      {"keys rotate", {{}, {"grace"}, 1}},
      {"keys list", {{"user"}, {}, 0}},
      {"keys get", {{}, {}, 1}},
      {"keys update", {{}, {"name", "rpm", "tpm", "budget", "period", LAGOON_POLICY_FLAGS, "tags"}, 1}},
      {"prices list", {}},
      {"prices set",
       {{}, {"input", "output", "cache-input", "cache-write", "per-image", "per-million-characters", "per-second"}, 1}},
      {"prices unset", {{}, {}, 1}},
      {"prices refresh", {}},
      {"usage", {{}, {"key", "user", "from", "to", "by"}, 0}},
  };
  return all;
}

// Flags a command takes more than once, each value kept (Command::repeated).
const std::set<std::string>& repeatable(const std::string& command) {
  static const std::map<std::string, std::set<std::string>> all = {{"usage", {"tag"}}};
  static const std::set<std::string> none;
  const auto it = all.find(command);
  return it == all.end() ? none : it->second;
}

config::Config load_config(const Command& cmd) {
  std::string text;
  if (cmd.config_file) {
    std::ifstream in(*cmd.config_file);
    if (!in) throw config::ConfigError("--config", "cannot read \"" + *cmd.config_file + "\"");
    std::ostringstream s;
    s << in.rdbuf();
    text = s.str();
    if (text.empty()) throw config::ConfigError("--config", "\"" + *cmd.config_file + "\" is empty");
  }
  return config::load(text, config::process_environment(), std::thread::hardware_concurrency());
}

int execute(const Command& cmd) {
  config::Config cfg = load_config(cmd);
  if (cmd.name == "serve") {
    config::require_database(cfg);
    config::require_pepper(cfg);
    return app::run(cfg);
  }
  config::require_database(cfg);
  auto conn = db::connect(cfg);
  if (cmd.name == "migrate") {
    auto report = db::migrate(*conn, db::embedded_migrations());
    print(json{{"applied", report.applied}, {"version", report.current_version}});
    return 0;
  }
  if (cmd.name == "prices refresh") return refresh_prices(cmd, cfg, *conn);
  return report(cmd, cfg, run_operation(cmd, cfg, *conn));
}

}  // namespace

void print(const nlohmann::json& out) { std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << std::endl; }

int report(const Command& cmd, const config::Config& cfg, const admin::Outcome& outcome) {
  print(outcome.body);
  try {
    admin::invalidate(cfg, outcome);
  } catch (const admin::InvalidationFailed& e) {
    // The change is made and printed: explain, and exit 1 so scripts notice.
    std::cerr << "lagoon: " << e.what();
    if (outcome.repeatable) {
      std::string rerun = cmd.name;
      for (const auto& p : cmd.positional) rerun += " " + p;
      for (const auto& [k, v] : cmd.options) rerun += " --" + k + " " + v;
      std::cerr << " Run `lagoon " << rerun << "` again once Redis is reachable.";
    }
    std::cerr << "\n";
    return 1;
  }
  return 0;
}

std::string usage_text() {
  return "usage:\n"
         "  lagoon serve   [--config FILE]        run the gateway (foreground; logs to stdout)\n"
         "  lagoon migrate [--config FILE]        apply schema migrations (idempotent)\n"
         "  lagoon users create --name NAME [POLICY]\n"
         "  lagoon users get NAME|ID\n"
         "  lagoon users deactivate NAME|ID\n"
         "  lagoon users update NAME|ID [--budget USD|none] [--period total|daily|monthly] [POLICY]\n"
         "  lagoon keys create --user NAME|ID [--name N] [--rpm N] [--tpm N] [--budget USD] [--period P]\n"
         "                    [POLICY] [--tags JSON]\n"
         "  lagoon keys list --user NAME|ID\n"
         "  lagoon keys get ID\n"
         "  lagoon keys update ID [--name N] [--rpm N|default] [--tpm N|default] [--budget USD|none]\n"
         "                       [--period total|daily|monthly] [POLICY] [--tags JSON]\n"
         "  lagoon keys rotate ID [--grace DURATION]       (default 24h; 0 = revoke the old key now)\n"
         "  lagoon keys revoke ID\n"
         "  lagoon prices list\n"
         "  lagoon prices set MODEL [--input USD_PER_1M --output USD_PER_1M] [--cache-input USD_PER_1M]\n"
         "                    [--cache-write USD_PER_1M] [--per-image USD] [--per-million-characters USD]\n"
         "                    [--per-second USD]\n"
         "  lagoon prices unset MODEL\n"
         "  lagoon prices refresh\n"
         "  lagoon usage --key ID|--user NAME|ID|--tag K=V [--tag K=V …] [--from TIME] [--to TIME]\n"
         "  lagoon usage [--key ID|--user NAME|ID] --by key|user|model|day [--tag K=V …] [--from TIME] [--to TIME]\n"
         "  lagoon --version | --help\n"
         "\n"
         "POLICY: [--models 'GLOB,…'|inherit] [--endpoints chat,embeddings,images,audio,responses|inherit]\n"
         "        [--expires RFC3339|never] [--max-concurrent N|inherit]   (0 = unlimited; '' = inherit too)\n"
         "\n"
         "Configuration comes from --config FILE and LAGOON_* environment variables;\n"
         "see config/lagoon.example.json.\n";
}

Command parse(const std::vector<std::string>& args) {
  Command cmd;
  std::vector<std::string> words;
  std::vector<std::pair<std::string, std::string>> flags;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") return Command{"--help", {}, {}, {}, {}};
    if (a == "--version") return Command{"--version", {}, {}, {}, {}};
    if (a.rfind("--", 0) == 0 && a.size() > 2) {
      std::string key = a.substr(2);
      std::string value;
      if (auto eq = key.find('='); eq != std::string::npos) {
        value = key.substr(eq + 1);
        key = key.substr(0, eq);
      } else {
        if (i + 1 >= args.size()) throw UsageError("--" + key + " needs a value");
        value = args[++i];
      }
      if (key == "config") cmd.config_file = value;
      else flags.emplace_back(std::move(key), std::move(value));
    } else {
      words.push_back(a);
    }
  }
  if (words.empty()) throw UsageError("no command given");
  cmd.name = words[0];
  std::size_t consumed = 1;
  if ((words[0] == "users" || words[0] == "keys" || words[0] == "prices") && words.size() > 1) {
    cmd.name += " " + words[1];
    consumed = 2;
  }
  auto spec = specs().find(cmd.name);
  if (spec == specs().end()) throw UsageError("unknown command \"" + cmd.name + "\"");
  const Spec& s = spec->second;
  cmd.positional.assign(words.begin() + static_cast<std::ptrdiff_t>(consumed), words.end());
  if (cmd.positional.size() != s.positional)
    throw UsageError(cmd.name + " takes " + std::to_string(s.positional) + " argument(s)");
  for (auto& [k, v] : flags) {
    if (repeatable(cmd.name).count(k)) cmd.repeated[k].push_back(std::move(v));
    else if (!s.required.count(k) && !s.optional.count(k)) throw UsageError(cmd.name + " does not take --" + k);
    else if (!cmd.options.emplace(k, std::move(v)).second) throw UsageError("--" + k + " given twice");
  }
  for (const auto& r : s.required)
    if (!cmd.options.count(r)) throw UsageError(cmd.name + " needs --" + r);
  return cmd;
}

int run(int argc, char** argv) {
  Command cmd;
  try {
    cmd = parse(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const UsageError& e) {
    std::cerr << "lagoon: " << e.what() << "\n\n" << usage_text();
    return 2;
  }
  if (cmd.name == "--help") {
    std::cout << usage_text();
    return 0;
  }
  if (cmd.name == "--version") {
    std::cout << "lagoon " << LAGOON_VERSION << "\n";
    return 0;
  }
  try {
    return execute(cmd);
  } catch (const UsageError& e) {
    std::cerr << "lagoon: " << e.what() << "\n";
    return 2;
  } catch (const config::ConfigError& e) {
    std::cerr << "lagoon: " << e.what() << "\n";
    return 2;
  } catch (const db::AccountsError& e) {
    std::cerr << "lagoon: " << e.what() << "\n";
    return e.kind() == db::AccountsError::Kind::invalid ? 2 : 1;
  } catch (const pqxx::broken_connection& e) {
    std::cerr << "lagoon: cannot reach Postgres: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "lagoon: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace lagoon::cli
