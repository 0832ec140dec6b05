#include "lagoon/log/log.hpp"

#include <atomic>
#include <chrono>
#include <ctime>

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "lagoon/util/thread_name.hpp"

namespace lagoon::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::info)};
std::shared_ptr<spdlog::logger> g_logger;

const char* name(Level l) {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "info";
}

std::string utc_now() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

void init(std::string_view level) {
  Level l = level == "debug" ? Level::debug : level == "warn" ? Level::warn : level == "error" ? Level::error : Level::info;
  g_level.store(static_cast<int>(l));
  if (g_logger) return;
  spdlog::init_thread_pool(8192, 1, [] { util::name_this_thread("lagoon-log"); });
  auto sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  g_logger = std::make_shared<spdlog::async_logger>("lagoon", sink, spdlog::thread_pool(),
                                                    spdlog::async_overflow_policy::overrun_oldest);
  g_logger->set_pattern("%v");
  g_logger->set_level(spdlog::level::trace);
  // Flushing happens on the logger thread, so a line is visible at once without costing the caller.
  g_logger->flush_on(spdlog::level::trace);
}

void shutdown() {
  if (g_logger) g_logger->flush();
  g_logger.reset();
  spdlog::shutdown();
}

bool enabled(Level level) noexcept { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

void write(Level level, std::string_view msg, const nlohmann::json& fields) {
  if (!enabled(level)) return;
  nlohmann::json line = {{"time", utc_now()}, {"level", name(level)}, {"msg", msg}};
  if (fields.is_object())
    for (auto it = fields.begin(); it != fields.end(); ++it) line[it.key()] = it.value();
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (g_logger) g_logger->info(text);
  else std::fprintf(stderr, "%s\n", text.c_str());
}

}  // namespace lagoon::log
