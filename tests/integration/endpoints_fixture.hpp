// The Endpoints fixture shared by endpoints_test.cpp and endpoints_flow_test.cpp: the Chat fixture (a
// migrated database, a key, the mock upstream, `lagoon serve`) plus requests to any endpoint, multipart
// bodies, a raw client for answers that never end, and SHA-256 for comparing binary bodies.
// Not thread-safe; each test owns its fixture.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "integration/chat_fixture.hpp"
#include "support/http_client.hpp"

namespace lagoon::test {

inline std::string sha256(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &n, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) out += {hex[md[i] >> 4], hex[md[i] & 15]};
  return out;
}

struct Form {
  std::string boundary = "lagoon-test-7MA4YWxkTrZu0gW";
  std::string body;
  Form& field(const std::string& name, const std::string& value) {
    body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n";
    return *this;
  }
  Form& file(const std::string& name, const std::string& filename, const std::string& type, const std::string& bytes) {
    body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"; filename=\"" + filename +
            "\"\r\nContent-Type: " + type + "\r\n\r\n" + bytes + "\r\n";
    return *this;
  }
  std::string done() const { return body + "--" + boundary + "--\r\n"; }
  std::string content_type() const { return "multipart/form-data; boundary=" + boundary; }
};

// A client on a plain socket that reads what has come so far, for an answer that never ends.
class RawClient {
 public:
  explicit RawClient(unsigned short port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect failed");
  }
  ~RawClient() { close(); }
  void send(const std::string& bytes) { ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size())); }
  // Everything read until `want` appears in it, the peer closes, or `timeout` passes.
  std::string read_until(std::string_view want, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string got;
    while (got.find(want) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[65536];
      const auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Closes with a TCP reset, as a client that is killed or cancels with data unread. (A plain close is
  // a half-close to the gateway, whose reader may still want the answer.)
  void reset() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close();
  }

 private:
  int fd_;
};

class Endpoints : public Chat {
 protected:
  std::optional<HttpResponse> post(const std::string& path, const std::string& body,
                                   const std::string& content_type = "application/json", const std::string& k = "") {
    return request(server->port(), "POST", "/api/v1" + path, body,
                   "Authorization: Bearer " + (k.empty() ? key : k) + "\r\nContent-Type: " + content_type + "\r\n");
  }
  std::optional<HttpResponse> get(const std::string& target, bool with_key = true) {
    return request(server->port(), "GET", target, "", with_key ? "Authorization: Bearer " + key + "\r\n" : "");
  }
  // The newest usage row's columns, comma-separated.
  std::string last_row(const std::string& columns) {
    return db.scalar("SELECT concat_ws(',', " + columns + ") FROM usage_records ORDER BY started_at DESC LIMIT 1");
  }
};

}  // namespace lagoon::test
