// Fuzz target: configuration loading. Oracle: whatever the file holds, load() either returns a Config
// or throws ConfigError naming a field — never another exception, never a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "lagoon/config/config.hpp"

using namespace lagoon;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The input is the file; its last line (after the last \n), if it looks like NAME=value, is also set
  // in the environment so that the environment parsers get fuzzed too.
  std::string text(reinterpret_cast<const char*>(data), size);
  config::Environment env;
  if (const auto nl = text.rfind('\n'); nl != std::string::npos) {
    const std::string last = text.substr(nl + 1);
    if (const auto eq = last.find('='); eq != std::string::npos && eq > 0) {
      env["LAGOON_" + last.substr(0, eq)] = last.substr(eq + 1);
      text.resize(nl);
    }
  }
  try {
    (void)config::load(text, env, 2);
  } catch (const config::ConfigError& e) {
    if (e.field().empty()) std::abort();
  }
  return 0;
}
