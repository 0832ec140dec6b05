// Logging: one JSON object per line on stdout, written by spdlog's background thread so a reactor
// thread never waits on a pipe. When the queue is full the oldest lines are dropped (counted by spdlog),
// never the reactor blocked. Callers must never pass key material: log the key id or display prefix.
// Thread-safety: every function may be called from any thread after init().
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

namespace lagoon::log {

enum class Level { debug, info, warn, error };

// Starts the asynchronous logger at `level` ("debug", "info", "warn", "error").
void init(std::string_view level);

// Flushes and stops the background thread; call before exit.
void shutdown();

bool enabled(Level level) noexcept;

// Writes {"ts":…,"level":…,"msg":msg, …fields}.
void write(Level level, std::string_view msg, const nlohmann::json& fields = nlohmann::json::object());

inline void debug(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { write(Level::debug, m, f); }
inline void info(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { write(Level::info, m, f); }
inline void warn(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { write(Level::warn, m, f); }
inline void error(std::string_view m, const nlohmann::json& f = nlohmann::json::object()) { write(Level::error, m, f); }

}  // namespace lagoon::log
