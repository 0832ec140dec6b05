#include "support/haproxy.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <thread>

#include "support/http_client.hpp"

namespace lagoon::test {

std::string haproxy_config(unsigned short port, const std::vector<unsigned short>& backends) {
  std::string c =
      "global\n"
      "  maxconn 4000\n"
      "defaults\n"
      "  mode http\n"
      "  timeout connect 2s\n"
      "  timeout client 120s\n"
      "  timeout server 120s\n"
      "  timeout http-keep-alive 10s\n"
      "  option http-keep-alive\n"
      "  retries 3\n"
      "  option redispatch 1\n"
      // A failed connect, or a connection closed before any response byte (Lagoon serves nothing on a
      // connection its drain closes; a crashed instance is the case where this could replay a request).
      "  retry-on conn-failure empty-response\n"
      "frontend lagoon_in\n"
      "  bind 127.0.0.1:" +
      std::to_string(port) +
      "\n"
      "  default_backend lagoon\n"
      "backend lagoon\n"
      "  balance roundrobin\n"
      "  option httpchk GET /readyz\n"
      "  http-check expect status 200\n"
      "  default-server check inter 200ms fall 2 rise 2\n";
  for (std::size_t i = 0; i < backends.size(); ++i)
    c += "  server lagoon" + std::to_string(i) + " 127.0.0.1:" + std::to_string(backends[i]) + "\n";
  return c;
}

Haproxy::Haproxy(const std::vector<unsigned short>& backends) : port_(free_port()) {
  std::random_device rd;
  dir_ = (std::filesystem::temp_directory_path() / ("lagoon-haproxy-" + std::to_string(rd()))).string();
  std::filesystem::create_directories(dir_);
  config_ = haproxy_config(port_, backends);
  std::ofstream(dir_ + "/haproxy.cfg") << config_;
  process_ = std::make_unique<Process>(
      std::vector<std::string>{"/usr/sbin/haproxy", "-db", "-f", dir_ + "/haproxy.cfg"}, Env{}, dir_ + "/haproxy.log");
  // Up, and every backend seen healthy (rise 2 at 200 ms).
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!process_->running()) break;
    if (i < 10) continue;  // every backend seen healthy first (rise 2 at 200 ms)
    try {
      if (auto r = request(port_, "GET", "/healthz"); r && r->status == 200) return;
    } catch (const std::exception&) {  // not listening yet
    }
  }
  throw std::runtime_error("haproxy did not start:\n" + process_->output());
}

Haproxy::~Haproxy() {
  process_.reset();
  std::filesystem::remove_all(dir_);
}

}  // namespace lagoon::test
