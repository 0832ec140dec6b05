// systemd's readiness protocol (sd_notify): when the service manager started us with NOTIFY_SOCKET
// set (Type=notify), tell it READY=1 once the listener accepts and STOPPING=1 when the drain begins.
// Without NOTIFY_SOCKET, nothing happens. Written by hand rather than linking libsystemd: the protocol
// is one datagram on a Unix socket, documented as stable for exactly this use (sd_notify(3)).
// Thread-safe; never blocks (a datagram that cannot be sent at once is dropped).
#pragma once

#include <string_view>

namespace lagoon::app {

// Sends `state` ("READY=1", "STOPPING=1", "STATUS=…") to $NOTIFY_SOCKET. Returns false when there is
// no socket or the message could not be sent.
bool notify_service_manager(std::string_view state) noexcept;

}  // namespace lagoon::app
