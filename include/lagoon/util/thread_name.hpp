// Names the calling thread (at most 15 characters, the kernel's limit) so that `top -H`, `perf sched`
// and /proc/<pid>/task/*/comm tell Lagoon's threads apart. Thread-safety: affects only the caller.
#pragma once

#include <pthread.h>

namespace lagoon::util {

inline void name_this_thread(const char* name) noexcept { pthread_setname_np(pthread_self(), name); }

}  // namespace lagoon::util
