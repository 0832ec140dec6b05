// What the endpoint unit tests share: an endpoint's spec by its path, and a multipart/form-data body.
// Single-threaded, like the tests.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lagoon/relay/endpoints.hpp"

namespace lagoon::test {

inline const relay::EndpointSpec& spec(std::string_view path) {
  for (const auto& s : relay::endpoint_specs())
    if (s.path == path) return s;
  throw std::logic_error("no spec for " + std::string(path));
}

// Fields, then (when `file_name` is set) a file part named so, holding `file`.
inline std::string form(const std::vector<std::pair<std::string, std::string>>& fields, const std::string& file_name,
                        const std::string& file, const std::string& boundary = "XyZ") {
  std::string b;
  for (const auto& [name, value] : fields)
    b += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n";
  if (!file_name.empty())
    b += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + file_name +
         "\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n" + file + "\r\n";
  return b + "--" + boundary + "--\r\n";
}

}  // namespace lagoon::test
