// A deliberately small blocking HTTP/1.1 client over raw sockets, so tests control every byte the
// server sees (partial headers, oversized lines, slow senders) and see every byte it answers.
// Every read has a deadline. Not thread-safe; one Connection per thread.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace lagoon::test {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

class Connection {
 public:
  explicit Connection(unsigned short port);  // throws if it cannot connect
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool send(const std::string& bytes);  // false if the peer is gone
  // Half-closes: the server sees the end of the request stream, and may still answer.
  void shutdown_write();
  // Closes with a TCP reset (SO_LINGER 0), as a client that is killed or cancels with data unread.
  void reset();
  // Reads one response (Content-Length, chunked, or until close). nullopt on timeout or close before a status line.
  std::optional<HttpResponse> read_response(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // The status of the next response, interim ones included (read_response skips those): waits for its
  // head; a 1xx head is consumed, a final one is left for read_response(). nullopt on timeout or close.
  std::optional<int> next_status(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // True when the server closed the connection within `timeout` (EOF or reset).
  bool closed_by_peer(std::chrono::milliseconds timeout);

 private:
  bool fill(std::chrono::steady_clock::time_point deadline);  // reads more into buffer_; false on EOF/timeout
  int fd_ = -1;
  std::string buffer_;
  bool eof_ = false;
};

// One request on a fresh connection; `extra_headers` are raw "Name: value\r\n" lines.
std::optional<HttpResponse> request(unsigned short port, const std::string& method, const std::string& target,
                                    const std::string& body = "", const std::string& extra_headers = "");

// The bytes of that request, for tests that write to a Connection themselves.
std::string chat_request_bytes(const std::string& key, const std::string& body);

// POST /api/v1/chat/completions with the key as Bearer credential and a JSON body.
std::optional<HttpResponse> chat_completion(unsigned short port, const std::string& key, const std::string& body);

}  // namespace lagoon::test
