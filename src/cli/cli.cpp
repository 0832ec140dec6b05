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

#include "lagoon/admin/operations.hpp"
#include "lagoon/ratelimit/policy.hpp"
#include "lagoon/config/config.hpp"
#include "lagoon/db/accounts.hpp"
#include "lagoon/db/connection.hpp"
#include "lagoon/db/migrations.hpp"
#include "lagoon/app/run.hpp"

namespace lagoon::cli {
namespace {

using nlohmann::json;

struct Spec {
  std::set<std::string> required;
  std::set<std::string> optional;
  std::size_t positional = 0;
};

const std::map<std::string, Spec>& specs() {
  static const std::map<std::string, Spec> all = {
      {"serve", {}},
      {"migrate", {}},
      {"users create", {{"name"}, {}, 0}},
      {"users deactivate", {{}, {}, 1}},
      {"users get", {{}, {}, 1}},
      {"keys create", {{"user"}, {"name", "rpm", "tpm"}, 0}},
      {"keys revoke", {{}, {}, 1}},
      {"keys list", {{"user"}, {}, 0}},
      {"keys get", {{}, {}, 1}},
      {"keys update", {{}, {"name", "rpm", "tpm"}, 1}},
      {"usage", {{}, {"key", "user", "from", "to"}, 0}},
  };
  return all;
}

std::int64_t parse_int(const std::string& what, const std::string& s, std::int64_t lo, std::int64_t hi) {
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v < lo || v > hi)
    throw UsageError(what + ": expected an integer " + std::to_string(lo) + ".." + std::to_string(hi) + ", got \"" + s + "\"");
  return v;
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

using ratelimit::kMaxRpm;
using ratelimit::kMaxTpm;

// --rpm/--tpm of `keys update`: a number, or "default" for the configured default (NULL).
std::optional<std::int64_t> limit_or_default(const std::string& what, const std::string& s, std::int64_t max) {
  if (s == "default") return std::nullopt;
  return parse_int(what, s, 0, max);
}

std::int64_t key_id_argument(const Command& cmd) {
  return parse_int("ID", cmd.positional.at(0), 1, 9223372036854775807LL);
}

std::optional<std::string> option(const Command& cmd, const std::string& name) {
  auto it = cmd.options.find(name);
  if (it == cmd.options.end()) return std::nullopt;
  return it->second;
}

// The operation a command names, on one connection; the same functions serve /admin/v1.
admin::Outcome run_operation(const Command& cmd, const config::Config& cfg, pqxx::connection& conn) {
  if (cmd.name == "users create") return admin::create_user(conn, cmd.options.at("name"));
  if (cmd.name == "users get") return admin::get_user(conn, cmd.positional.at(0));
  if (cmd.name == "users deactivate") return admin::deactivate_user(conn, cmd.positional.at(0));
  if (cmd.name == "keys create") {
    config::require_pepper(cfg);
    db::KeyOptions o;
    o.name = option(cmd, "name");
    if (auto v = option(cmd, "rpm")) o.rpm_limit = parse_int("--rpm", *v, 0, kMaxRpm);
    if (auto v = option(cmd, "tpm")) o.tpm_limit = parse_int("--tpm", *v, 0, kMaxTpm);
    return admin::create_key(conn, cfg.key_pepper, cmd.options.at("user"), o);
  }
  if (cmd.name == "keys revoke") return admin::revoke_key(conn, key_id_argument(cmd));
  if (cmd.name == "keys list") return admin::list_keys(conn, cmd.options.at("user"));
  if (cmd.name == "keys get") return admin::get_key(conn, key_id_argument(cmd));
  if (cmd.name == "keys update") {
    db::KeyChanges c;
    if (auto v = option(cmd, "name")) c.name = std::optional<std::string>(*v);
    if (auto v = option(cmd, "rpm")) c.rpm_limit = limit_or_default("--rpm", *v, kMaxRpm);
    if (auto v = option(cmd, "tpm")) c.tpm_limit = limit_or_default("--tpm", *v, kMaxTpm);
    if (c.empty()) throw UsageError("keys update needs --name, --rpm or --tpm");
    return admin::update_key(conn, key_id_argument(cmd), c);
  }
  if (cmd.name == "usage") {
    db::UsageQuery q;
    const auto key = option(cmd, "key");
    q.user_ref = option(cmd, "user");
    if (key.has_value() == q.user_ref.has_value()) throw UsageError("usage needs exactly one of --key ID and --user NAME|ID");
    if (key) q.key_id = parse_int("--key", *key, 1, 9223372036854775807LL);
    for (const auto& [flag, into] : {std::pair{"from", &q.from}, std::pair{"to", &q.to}}) {
      if (auto v = option(cmd, flag)) {
        if (!admin::valid_timestamp(*v))
          throw UsageError(std::string("--") + flag + ": expected an RFC 3339 date or date-time, got \"" + *v + "\"");
        *into = *v;
      }
    }
    return admin::usage(conn, q);
  }
  throw UsageError("unknown command \"" + cmd.name + "\"");
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
  json out;
  if (cmd.name == "migrate") {
    auto report = db::migrate(*conn, db::embedded_migrations());
    out = {{"applied", report.applied}, {"version", report.current_version}};
  } else {
    const admin::Outcome outcome = run_operation(cmd, cfg, *conn);
    out = outcome.body;
    try {
      admin::invalidate(cfg, outcome);
    } catch (const admin::InvalidationFailed& e) {
      // The change is made: print it, explain, and exit 1 so scripts notice.
      std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << std::endl;
      std::string rerun = cmd.name;
      for (const auto& p : cmd.positional) rerun += " " + p;
      for (const auto& [k, v] : cmd.options) rerun += " --" + k + " " + v;
      std::cerr << "lagoon: " << e.what() << " Run `lagoon " << rerun << "` again once Redis is reachable.\n";
      return 1;
    }
  }
  std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << std::endl;
  return 0;
}

}  // namespace

std::string usage_text() {
  return "usage:\n"
         "  lagoon serve   [--config FILE]        run the gateway (foreground; logs to stdout)\n"
         "  lagoon migrate [--config FILE]        apply schema migrations (idempotent)\n"
         "  lagoon users create --name NAME\n"
         "  lagoon users get NAME|ID\n"
         "  lagoon users deactivate NAME|ID\n"
         "  lagoon keys create --user NAME|ID [--name N] [--rpm N] [--tpm N]\n"
         "  lagoon keys list --user NAME|ID\n"
         "  lagoon keys get ID\n"
         "  lagoon keys update ID [--name N] [--rpm N|default] [--tpm N|default]\n"
         "  lagoon keys revoke ID\n"
         "  lagoon usage --key ID|--user NAME|ID [--from TIME] [--to TIME]\n"
         "  lagoon --version | --help\n"
         "\n"
         "Configuration comes from --config FILE and LAGOON_* environment variables;\n"
         "see config/lagoon.example.json.\n";
}

Command parse(const std::vector<std::string>& args) {
  Command cmd;
  std::vector<std::string> words;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") return Command{"--help", {}, {}, {}};
    if (a == "--version") return Command{"--version", {}, {}, {}};
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
      else if (!cmd.options.emplace(key, value).second) throw UsageError("--" + key + " given twice");
    } else {
      words.push_back(a);
    }
  }
  if (words.empty()) throw UsageError("no command given");
  cmd.name = words[0];
  std::size_t consumed = 1;
  if ((words[0] == "users" || words[0] == "keys") && words.size() > 1) {
    cmd.name += " " + words[1];
    consumed = 2;
  }
  auto spec = specs().find(cmd.name);
  if (spec == specs().end()) throw UsageError("unknown command \"" + cmd.name + "\"");
  cmd.positional.assign(words.begin() + static_cast<std::ptrdiff_t>(consumed), words.end());
  if (cmd.positional.size() != spec->second.positional)
    throw UsageError(cmd.name + " takes " + std::to_string(spec->second.positional) + " argument(s)");
  for (const auto& r : spec->second.required)
    if (!cmd.options.count(r)) throw UsageError(cmd.name + " needs --" + r);
  for (const auto& [k, v] : cmd.options)
    if (!spec->second.required.count(k) && !spec->second.optional.count(k))
      throw UsageError(cmd.name + " does not take --" + k);
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
