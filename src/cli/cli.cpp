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

#include "lagoon/auth/invalidation.hpp"
#include "lagoon/config/config.hpp"
#include "lagoon/config/url.hpp"
#include "lagoon/db/accounts.hpp"
#include "lagoon/db/connection.hpp"
#include "lagoon/db/migrations.hpp"
#include "lagoon/server/server.hpp"

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
      {"keys create", {{"user"}, {"name", "rpm", "tpm"}, 0}},
      {"keys revoke", {{}, {}, 1}},
      {"keys list", {{"user"}, {}, 0}},
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

json optional_json(const auto& v) { return v ? json(*v) : json(nullptr); }

json key_json(const db::KeyInfo& k) {
  return {{"id", k.id},
          {"prefix", k.prefix},
          {"name", optional_json(k.name)},
          {"is_active", k.is_active},
          {"rpm_limit", optional_json(k.rpm_limit)},
          {"tpm_limit", optional_json(k.tpm_limit)},
          {"created_at", k.created_at},
          {"last_used_at", optional_json(k.last_used_at)},
          {"revoked_at", optional_json(k.revoked_at)}};
}

// Redis may be across a network from an operator's shell; still, a CLI call must not hang.
constexpr std::chrono::milliseconds kCliRedisTimeout{2000};

// Tells running instances that these keys changed. On failure the change is already in Postgres: print
// the result, explain, and return false (exit 1) so scripts notice.
bool invalidate(const config::Config& cfg, const std::vector<auth::KeyRecord>& records, const json& out,
                const std::string& what_changed, const std::string& rerun) {
  redis::SyncConnection redis(config::parse_redis_url(cfg.redis_url), kCliRedisTimeout);
  try {
    auth::publish_invalidation(redis, cfg.redis_prefix, records);
    return true;
  } catch (const std::exception& e) {
    std::cout << out.dump() << std::endl;
    std::cerr << "lagoon: " << what_changed << " in Postgres, but the running instances could not be told ("
              << e.what() << "); they may go on accepting its keys from their caches for up to 15 min. Run `lagoon "
              << rerun << "` again once Redis is reachable.\n";
    return false;
  }
}

int execute(const Command& cmd) {
  config::Config cfg = load_config(cmd);
  if (cmd.name == "serve") {
    config::require_database(cfg);
    config::require_pepper(cfg);
    return server::run(cfg);
  }
  config::require_database(cfg);
  auto conn = db::connect(cfg);
  json out;
  if (cmd.name == "migrate") {
    auto report = db::migrate(*conn, db::embedded_migrations());
    out = {{"applied", report.applied}, {"version", report.current_version}};
  } else if (cmd.name == "users create") {
    auto u = db::create_user(*conn, cmd.options.at("name"));
    out = {{"id", u.id}, {"name", u.name}, {"is_active", u.is_active}, {"created_at", u.created_at}};
  } else if (cmd.name == "keys create") {
    config::require_pepper(cfg);
    db::KeyOptions o;
    if (auto it = cmd.options.find("name"); it != cmd.options.end()) o.name = it->second;
    if (auto it = cmd.options.find("rpm"); it != cmd.options.end()) o.rpm_limit = parse_int("--rpm", it->second, 0, 2147483647);
    if (auto it = cmd.options.find("tpm"); it != cmd.options.end())
      o.tpm_limit = parse_int("--tpm", it->second, 0, 9223372036854775807LL);
    auto k = db::create_key(*conn, cfg.key_pepper, cmd.options.at("user"), o);
    out = {{"id", k.id}, {"key", k.key}, {"prefix", k.prefix}, {"user_id", k.user_id}};
  } else if (cmd.name == "keys revoke") {
    const auto id = parse_int("ID", cmd.positional.at(0), 1, 9223372036854775807LL);
    auto k = db::revoke_key(*conn, id);
    out = {{"id", k.id}, {"revoked", true}, {"revoked_at", optional_json(k.revoked_at)}};
    if (!invalidate(cfg, db::key_records_of_key(*conn, id), out, "key " + std::to_string(id) + " is revoked",
                    "keys revoke " + std::to_string(id)))
      return 1;
  } else if (cmd.name == "users deactivate") {
    auto u = db::deactivate_user(*conn, cmd.positional.at(0));
    out = {{"id", u.id}, {"name", u.name}, {"is_active", u.is_active}};
    if (!invalidate(cfg, db::key_records_of_user(*conn, u.id), out, "user \"" + u.name + "\" is deactivated",
                    "users deactivate " + std::to_string(u.id)))
      return 1;
  } else if (cmd.name == "keys list") {
    out = json::array();
    for (const auto& k : db::list_keys(*conn, cmd.options.at("user"))) out.push_back(key_json(k));
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
         "  lagoon users deactivate NAME|ID\n"
         "  lagoon keys create --user NAME|ID [--name N] [--rpm N] [--tpm N]\n"
         "  lagoon keys revoke ID\n"
         "  lagoon keys list --user NAME|ID\n"
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
