// A message digest (OpenSSL's EVP: SHA-1, SHA-256 …) of some text as lower-case hex — for script
// hashes and content fingerprints, never for secrets (keys are HMACed: keys/api_key.hpp).
// Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include <openssl/evp.h>

namespace lagoon::util {

// Bytes as lower-case hex.
inline std::string hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bytes.size());
  for (const unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

inline std::string hex_digest(std::string_view text, const EVP_MD* md) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), out, &len, md, nullptr);
  return hex(std::string_view(reinterpret_cast<const char*>(out), len));
}

}  // namespace lagoon::util
