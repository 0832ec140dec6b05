// lagoon-mock-upstream's server, shared by its files: server.cpp (listening, reading requests, the
// misbehaviour every route shares, main), call.cpp (a request's body, form parts and directives), chat.cpp
// (chat completions), routes.cpp (the route table and Venice's other endpoints) and control.cpp (the
// /mock/ routes for tests). Bodies come from the pure builders in include/lagoon/mock/.
//
// Thread-safety: one Mock serves every connection, each a coroutine on its own strand, on `--threads`
// threads; Stats is atomics plus a mutex for the last request and the per-path counters. The catalog is
// an immutable Catalog behind a mutex-guarded pointer: a request copies the pointer and reads its copy,
// POST /mock/catalog swaps in a new one. A Call belongs to the one coroutine serving its request.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "lagoon/mock/catalog_control.hpp"
#include "lagoon/mock/media.hpp"
#include "lagoon/mock/responses.hpp"

namespace lagoon::mock::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using nlohmann::json;
using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;
using Head = bhttp::response<bhttp::empty_body>;

struct Stats {
  std::atomic<std::uint64_t> requests{0}, chat_requests{0}, catalog_requests{0}, streams_started{0},
      streams_completed{0}, client_disconnects{0}, auth_failures{0}, resets{0};
  std::mutex mutex;  // guards the two below
  json last_request = nullptr;
  std::map<std::string, std::uint64_t, std::less<>> requests_by_path;

  void count_path(std::string_view path);
  json to_json();
};

struct Options {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  std::string api_key;
  unsigned threads = 1;
};

// One request as a route sees it. Built in place and never moved: `plan` and directive() hand out views
// into `values_`.
class Call {
 public:
  // `path` is relative to the API base ("/embeddings" for /api/v1/embeddings).
  Call(Request& req, std::string path, std::string query);
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  Request& req;
  const std::string path;
  const std::string query;
  json body;                              // the JSON body; discarded when there is none
  std::optional<std::vector<Part>> form;  // the multipart/form-data parts, viewing req.body()
  Plan plan;
  bool keep_alive;

  // An x-mock-* directive: the header, else the same name without "x-mock-" in the x_mock object of the
  // JSON body or of the multipart part named x_mock. "" when absent.
  std::string_view directive(std::string_view name);
  // A string field: the JSON body's, else a multipart part's text. nullopt when absent or not a string.
  std::optional<std::string> field(std::string_view name) const;
  // A query parameter's raw value; "" when absent.
  std::string_view query_param(std::string_view name) const;

 private:
  json directives_ = nullptr;
  std::deque<std::string> values_;
};

class Mock {
 public:
  explicit Mock(Options o);
  int run();

 private:
  using Handler = awaitable<bool> (Mock::*)(beast::tcp_stream&, Call&);
  enum class Access { key, optional_key };  // Venice's catalog answers without a key too
  enum class Counter { none, chat, catalog };
  struct Route {
    std::string_view path;
    bhttp::verb method;
    Access access;
    Counter counter;
    Handler handler;
  };
  static const Route* find_route(std::string_view path, bhttp::verb method);

  awaitable<void> accept_loop();
  awaitable<void> serve(tcp::socket socket);
  // An API request (under /api/v1 or /v1). Returns false when the connection must end.
  awaitable<bool> dispatch(beast::tcp_stream& stream, Request& req, std::string_view path, std::string_view query);

  // ---- What every route shares (server.cpp) ----
  static Response plain(bhttp::status status, std::string body, bool keep_alive,
                        std::string_view type = "application/json");
  static Response error(unsigned status, std::string_view message, bool keep_alive);
  // `body` as the answer with `status`, with Retry-After: 1 on 429 and 503 as Venice sends it.
  static Response failure(unsigned status, std::string body, bool keep_alive);
  template <class Body>
  static void venice_headers(bhttp::response<Body>& res, const std::string& model);
  bool authorized(const Request& req);
  static awaitable<void> until_client_leaves(beast::tcp_stream& stream);
  static awaitable<void> sleep(std::chrono::milliseconds d);
  void reset(beast::tcp_stream& stream);
  void record(const Call& call);  // (control.cpp)
  static awaitable<bool> respond(beast::tcp_stream& stream, Response& res, bool keep_alive);
  // A 400-class answer to a request the route cannot serve, before any directive applies (as Venice
  // checks a request before it queues it).
  static awaitable<bool> refuse(beast::tcp_stream& stream, const Call& call, unsigned status, std::string_view why);
  // x-mock-first-byte-ms, x-mock-stall: headers and x-mock-status, in that order. A value when the request
  // has been answered (or abandoned): whether the connection may go on. nullopt when the route answers.
  awaitable<std::optional<bool>> preamble(beast::tcp_stream& stream, Call& call);
  // `body` after `head`, in plan.chunks pieces plan.gap apart, honouring stall: body and reset-after.
  // Content-Length framing, or HTTP chunks when `chunked`.
  awaitable<bool> send_pieces(beast::tcp_stream& stream, const Call& call, Head& head, const std::string& body,
                              bool chunked);
  // The usual end of a route: preamble(), then `body` as `content_type` with Venice's headers for `model`.
  awaitable<bool> answer(beast::tcp_stream& stream, Call& call, std::string_view content_type, const std::string& model,
                         const std::string& body, bool chunked = false);
  // An SSE answer in HTTP chunks, one per string: `opening`, then plan.chunks events from `event_for(i)`
  // plan.gap apart (reset-after and stall: body count these), then `closing`.
  awaitable<bool> send_sse(beast::tcp_stream& stream, const Plan& plan, const std::string& model, bool keep_alive,
                           const std::vector<std::string>& opening,
                           const std::function<std::string(unsigned)>& event_for,
                           const std::vector<std::string>& closing);

  // ---- The routes for tests (control.cpp) ----
  // The answer to a request outside the API: /mock/stats, /mock/last-request, /mock/catalog, else 404.
  Response control(const Request& req, std::string_view path);
  std::shared_ptr<const Catalog> catalog_now();

  // ---- Chat completions (chat.cpp) ----
  awaitable<bool> chat(beast::tcp_stream& stream, Call& call);
  awaitable<bool> send_raw(beast::tcp_stream& stream, std::string raw, std::string_view fragment,
                           std::chrono::milliseconds gap, bool keep_alive);

  // ---- Venice's other endpoints (routes.cpp) ----
  awaitable<bool> embeddings(beast::tcp_stream& stream, Call& call);
  awaitable<bool> images_generations(beast::tcp_stream& stream, Call& call);
  awaitable<bool> image_generate(beast::tcp_stream& stream, Call& call);
  awaitable<bool> image_transform(beast::tcp_stream& stream, Call& call);  // upscale, edit, background-remove
  awaitable<bool> speech(beast::tcp_stream& stream, Call& call);
  awaitable<bool> transcriptions(beast::tcp_stream& stream, Call& call);
  awaitable<bool> responses(beast::tcp_stream& stream, Call& call);
  awaitable<bool> catalog(beast::tcp_stream& stream, Call& call);

  Options opts_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  Stats stats_;
  std::atomic<std::uint64_t> ids_{0};
  std::mutex catalog_mutex_;  // guards the pointer below, not the Catalog, which never changes
  std::shared_ptr<const Catalog> catalog_;
};

// The headers Venice puts on a model's answer: what describes the answer, and the account's state,
// which a gateway must keep from its own clients.
template <class Body>
void Mock::venice_headers(bhttp::response<Body>& res, const std::string& model) {
  res.set("x-venice-model-id", model);
  res.set("x-venice-version", "mock");
  res.set("x-venice-balance-usd", "1234.56");
  res.set("x-venice-balance-diem", "78.9");
  res.set("X-Balance-Remaining", "4.23");
  res.set("x-ratelimit-remaining-requests", "499");
}

}  // namespace lagoon::mock::server
