#include "http_client.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

namespace lagoon::test {

Connection::Connection(unsigned short port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd_);
    throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + " failed");
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

void Connection::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

void Connection::reset() {
  if (fd_ < 0) return;
  linger l{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd_);
  fd_ = -1;
}

bool Connection::send(const std::string& bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

bool Connection::fill(std::chrono::steady_clock::time_point deadline) {
  if (eof_) return false;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
  char buf[65536];
  ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n <= 0) {
    eof_ = true;
    return false;
  }
  buffer_.append(buf, static_cast<std::size_t>(n));
  return true;
}

bool Connection::closed_by_peer(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!eof_)
    if (!fill(deadline) && !eof_) return false;
  return true;
}

std::optional<int> Connection::next_status(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos)
    if (!fill(deadline)) return std::nullopt;
  if (end < 12 || buffer_.rfind("HTTP/1.", 0) != 0) return std::nullopt;
  const int status = std::stoi(buffer_.substr(9, 3));
  if (status < 200) buffer_.erase(0, end + 4);
  return status;
}

std::optional<HttpResponse> Connection::read_response(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::size_t end;
  for (;;) {
    // A 1xx interim response (100 Continue) is skipped, as clients do.
    end = buffer_.find("\r\n\r\n");
    if (end != std::string::npos && buffer_.rfind("HTTP/1.1 1", 0) == 0) {
      buffer_.erase(0, end + 4);
      continue;
    }
    if (end != std::string::npos) break;
    if (!fill(deadline)) return std::nullopt;
  }
  HttpResponse r;
  std::string head = buffer_.substr(0, end);
  buffer_.erase(0, end + 4);
  auto line_end = head.find("\r\n");
  std::string status_line = head.substr(0, line_end);
  if (status_line.size() < 12) return std::nullopt;
  r.status = std::stoi(status_line.substr(9, 3));
  std::size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    auto e = head.find("\r\n", pos);
    if (e == std::string::npos) e = head.size();
    std::string line = head.substr(pos, e - pos);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      r.headers[name] = value;
    }
    pos = e + 2;
  }
  if (r.headers.count("content-length")) {
    std::size_t len = std::stoul(r.headers["content-length"]);
    while (buffer_.size() < len)
      if (!fill(deadline)) return std::nullopt;
    r.body = buffer_.substr(0, len);
    buffer_.erase(0, len);
  } else if (r.header("transfer-encoding").find("chunked") != std::string::npos) {
    for (;;) {
      std::size_t le;
      while ((le = buffer_.find("\r\n")) == std::string::npos)
        if (!fill(deadline)) return std::nullopt;
      std::size_t size = std::stoul(buffer_.substr(0, le), nullptr, 16);
      while (buffer_.size() < le + 2 + size + 2)
        if (!fill(deadline)) return std::nullopt;
      r.body += buffer_.substr(le + 2, size);
      buffer_.erase(0, le + 2 + size + 2);
      if (size == 0) break;
    }
  } else if (r.status >= 200 && r.status != 204 && r.status != 304) {
    while (fill(deadline)) {
    }
    r.body = buffer_;
    buffer_.clear();
  }
  return r;
}

std::optional<HttpResponse> request(unsigned short port, const std::string& method, const std::string& target,
                                    const std::string& body, const std::string& extra_headers) {
  Connection c(port);
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers;
  if (!body.empty() || method == "POST") req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  if (!c.send(req)) return std::nullopt;
  return c.read_response();
}

std::optional<HttpResponse> chat_completion(unsigned short port, const std::string& key, const std::string& body) {
  return request(port, "POST", "/api/v1/chat/completions", body,
                 "Authorization: Bearer " + key + "\r\nContent-Type: application/json\r\n");
}

std::string chat_request_bytes(const std::string& key, const std::string& body) {
  return "POST /api/v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace lagoon::test
