// lagoon-mock-upstream's routes for tests, outside the API: GET /mock/stats, GET /mock/last-request and
// POST /mock/catalog. Each answers at once, from the counters, the kept request or the catalog state.
#include "server.hpp"

namespace lagoon::mock::server {

void Stats::count_path(std::string_view path) {
  std::lock_guard lock(mutex);
  auto it = requests_by_path.find(path);
  if (it == requests_by_path.end())
    requests_by_path.emplace(std::string(path), 1);
  else
    ++it->second;
}

json Stats::to_json() {
  std::lock_guard lock(mutex);
  return {{"requests", requests.load()},
          {"chat_requests", chat_requests.load()},
          {"catalog_requests", catalog_requests.load()},
          {"requests_by_path", requests_by_path},
          {"streams_started", streams_started.load()},
          {"streams_completed", streams_completed.load()},
          {"client_disconnects", client_disconnects.load()},
          {"auth_failures", auth_failures.load()},
          {"resets", resets.load()}};
}

void Mock::record(const Call& call) {
  json headers = json::object();
  for (const auto& f : call.req) headers[std::string(f.name_string())] = std::string(f.value());
  json last = {{"method", std::string(call.req.method_string())},
               {"target", std::string(call.req.target())},
               {"path", call.path},
               {"headers", std::move(headers)},
               {"body", call.req.body()},
               {"body_base64", base64_encode(call.req.body())}};
  if (call.form) {
    json parts = json::array();
    for (const auto& p : *call.form)
      parts.push_back(
          {{"name", p.name}, {"filename", p.filename}, {"content_type", p.content_type}, {"size", p.data.size()}});
    last["parts"] = std::move(parts);
  }
  std::lock_guard lock(stats_.mutex);
  stats_.last_request = std::move(last);
}

std::shared_ptr<const Catalog> Mock::catalog_now() {
  std::lock_guard lock(catalog_mutex_);
  return catalog_;
}

Response Mock::control(const Request& req, std::string_view path) {
  const bool keep_alive = req.keep_alive();
  if (path == "/mock/stats") return plain(bhttp::status::ok, stats_.to_json().dump(), keep_alive);
  if (path == "/mock/last-request") {
    std::lock_guard lock(stats_.mutex);
    // A binary upload is not UTF-8; body_base64 holds its exact bytes.
    return plain(bhttp::status::ok, stats_.last_request.dump(-1, ' ', false, json::error_handler_t::replace),
                 keep_alive);
  }
  if (path != "/mock/catalog") return error(404, "no such route", keep_alive);
  if (req.method() != bhttp::verb::post) {
    Response res = error(405, "POST a control object", keep_alive);
    res.set(bhttp::field::allow, "POST");
    return res;
  }
  std::string problem;
  auto control = parse_catalog_control(req.body(), problem);
  if (!control) return error(400, problem, keep_alive);
  // Built before the lock: readers only ever wait for a pointer's copy.
  auto next = std::make_shared<const Catalog>(controlled_catalog(std::move(*control)));
  std::lock_guard lock(catalog_mutex_);
  catalog_ = std::move(next);
  return plain(bhttp::status::ok, "{}", keep_alive);
}

}  // namespace lagoon::mock::server
