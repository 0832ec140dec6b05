// lagoon-mock-upstream's POST /chat/completions: a completion as JSON, or as SSE chunks ending with the usage
// chunk when stream_options.include_usage asks for it and [DONE]; or, for upstream quirks, raw SSE bytes.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "lagoon/mock/catalog.hpp"
#include "lagoon/mock/cost.hpp"
#include "server.hpp"

namespace lagoon::mock::server {
namespace {
constexpr auto as_result = asio::as_tuple(asio::use_awaitable);
}  // namespace

// x-mock-raw-sse: these exact bytes as the event stream, in HTTP chunks of x-mock-fragment bytes
// (default: all at once) with x-mock-gap-ms between them — for upstream quirks the normal stream
// never has (CR line ends, a BOM, comments, data after [DONE], huge lines).
awaitable<bool> Mock::send_raw(beast::tcp_stream& stream, std::string raw, std::string_view fragment,
                               std::chrono::milliseconds gap, bool keep_alive) {
  std::size_t step = raw.size();
  if (!fragment.empty()) step = std::max<std::size_t>(1, std::strtoull(std::string(fragment).c_str(), nullptr, 10));
  Head head{bhttp::status::ok, 11};
  head.set(bhttp::field::content_type, "text/event-stream");
  head.keep_alive(keep_alive);
  head.chunked(true);
  bhttp::response_serializer<bhttp::empty_body> sr{head};
  if (auto [ec, n] = co_await bhttp::async_write_header(stream, sr, as_result); ec) co_return false;
  for (std::size_t at = 0; at < raw.size(); at += step) {
    if (at > 0) co_await sleep(gap);
    const std::string_view piece = std::string_view(raw).substr(at, step);
    auto [ec, n] = co_await asio::async_write(stream, bhttp::make_chunk(asio::buffer(piece)), as_result);
    if (ec) co_return false;
  }
  auto [ec, n] = co_await asio::async_write(stream, bhttp::make_chunk_last(), as_result);
  if (ec) co_return false;
  stats_.streams_completed++;
  co_return keep_alive;
}

// Returns false when the connection must end.
awaitable<bool> Mock::chat(beast::tcp_stream& stream, Call& call) {
  const json& body = call.body;
  if (body.is_discarded() || !body.is_object() || !body.contains("model") || !body["model"].is_string())
    co_return co_await refuse(stream, call, 400, "model is required");
  const std::string model = body["model"];
  const bool streaming = body.value("stream", false) == true;
  bool include_usage = false;
  if (auto it = body.find("stream_options"); it != body.end() && it->is_object())
    include_usage = it->value("include_usage", false) == true;
  const std::string id = "chatcmpl-mock-" + std::to_string(++ids_);
  const Usage usage = chat_usage(call.req.body().size(), call.plan);
  const std::shared_ptr<const Catalog> catalog = catalog_now();  // the prices GET /models shows now
  const std::optional<Cost> cost = chat_cost(call.plan, model_pricing(catalog->models, model), usage);

  const std::optional<bool> answered = co_await preamble(stream, call);
  if (answered) co_return *answered;
  if (!streaming) {
    Response res = plain(bhttp::status::ok, completion_body(id, model, call.plan, usage, cost), call.keep_alive);
    venice_headers(res, model);
    co_return co_await respond(stream, res, call.keep_alive);
  }

  stats_.streams_started++;
  if (const auto raw = call.directive("x-mock-raw-sse"); !raw.empty()) {
    const std::string bytes(raw);
    const std::string_view fragment = call.directive("x-mock-fragment");
    co_return co_await send_raw(stream, bytes, fragment, call.plan.gap, call.keep_alive);
  }
  const std::vector<std::string> opening = {role_event(id, model, include_usage)};
  const std::function<std::string(unsigned)> content = [&](unsigned i) {
    return content_event(id, model, chunk_content(call.plan, i), include_usage);
  };
  std::vector<std::string> closing = {finish_event(id, model, include_usage)};
  if (include_usage) closing.push_back(usage_event(id, model, usage, cost));
  closing.emplace_back(kDoneEvent);
  co_return co_await send_sse(stream, call.plan, model, call.keep_alive, opening, content, closing);
}

}  // namespace lagoon::mock::server
