// `lagoon serve`: the HTTP/1.1 gateway process. Owns the reactor (io_context run by LAGOON_THREADS
// threads), the listener, one coroutine per connection on its own strand, the Postgres pool and the
// readiness monitor; returns when a SIGTERM/SIGINT drain completes.
// Thread-safety: run() is called once, from main.
#pragma once

#include "lagoon/config/config.hpp"

namespace lagoon::app {

// Serves until SIGTERM/SIGINT and a drain; returns the process exit code (0 after a clean drain).
// Throws std::runtime_error if the listener cannot bind.
int run(const config::Config& cfg);

}  // namespace lagoon::app
