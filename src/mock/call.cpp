// One request as lagoon-mock-upstream's routes see it: its JSON body or multipart parts, and its x-mock-*
// directives from headers, the body's "x_mock" object or the "x_mock" form part.
#include "server.hpp"

namespace lagoon::mock::server {

Call::Call(Request& r, std::string p, std::string q)
    : req(r), path(std::move(p)), query(std::move(q)), keep_alive(r.keep_alive()) {
  form = parse_multipart(req[bhttp::field::content_type], req.body());
  if (form) {
    if (const Part* xm = find_part(*form, "x_mock")) directives_ = json::parse(xm->data, nullptr, false);
  } else if (!req.body().empty()) {
    body = json::parse(req.body(), nullptr, false);
    if (body.is_object())
      if (auto it = body.find("x_mock"); it != body.end()) directives_ = *it;
  }
  if (!directives_.is_object()) directives_ = nullptr;
  plan = plan_from([this](std::string_view name) { return directive(name); });
}

std::string_view Call::directive(std::string_view name) {
  if (auto h = req[name]; !h.empty()) return h;
  if (directives_.is_null() || name.substr(0, 7) != "x-mock-") return {};
  auto it = directives_.find(std::string(name.substr(7)));
  if (it == directives_.end()) return {};
  values_.push_back(it->is_string() ? it->get<std::string>() : it->dump());
  return values_.back();
}

std::optional<std::string> Call::field(std::string_view name) const {
  if (body.is_object())
    if (auto it = body.find(std::string(name)); it != body.end() && it->is_string()) return it->get<std::string>();
  if (form)
    if (const Part* p = find_part(*form, name)) return std::string(p->data);
  return std::nullopt;
}

std::string_view Call::query_param(std::string_view name) const {
  std::string_view q = query;
  while (!q.empty()) {
    const std::string_view item = q.substr(0, q.find('&'));
    q = item.size() < q.size() ? q.substr(item.size() + 1) : std::string_view{};
    const auto eq = item.find('=');
    if (item.substr(0, eq) == name) return eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
  }
  return {};
}

}  // namespace lagoon::mock::server
