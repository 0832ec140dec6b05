// Fuzz target: the Authorization header and key parsers. Oracles: a token is a piece of the header with
// no blank in it; a key that passes well_formed has the exact length, and its display and log prefixes
// are pieces of it, and the log form holds no 8 consecutive characters of it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lagoon/auth/bearer.hpp"
#include "lagoon/keys/api_key.hpp"

using namespace lagoon;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view header(reinterpret_cast<const char*>(data), size);
  const auto token = auth::bearer_token(header);
  if (!token) return 0;
  if (token->empty() || token->find_first_of(" \t") != std::string_view::npos) std::abort();
  if (token->data() < header.data() || token->data() + token->size() > header.data() + header.size()) std::abort();
  if (!keys::well_formed(*token)) return 0;
  if (token->size() != keys::kKeyLength && token->size() != keys::kLegacyKeyLength) std::abort();
  (void)keys::tag_matches("fuzz-pepper", *token);  // any input, never a crash
  const auto display = keys::display_prefix(*token);
  if (token->substr(0, display.size()) != display) std::abort();
  const auto logged = keys::log_prefix(display);
  for (std::size_t i = 0; i + 8 <= token->size(); ++i)
    if (logged.find(token->substr(i, 8)) != std::string::npos) std::abort();
  return 0;
}
