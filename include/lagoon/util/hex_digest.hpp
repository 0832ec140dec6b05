// A message digest (OpenSSL's EVP: SHA-1, SHA-256 …) of some text as lower-case hex — for script
// hashes and content fingerprints, never for secrets (keys are HMACed: keys/api_key.hpp).
// Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include <openssl/evp.h>

namespace lagoon::util {

inline std::string hex_digest(std::string_view text, const EVP_MD* md) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), out, &len, md, nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * len);
  for (unsigned i = 0; i < len; ++i) {
    hex += kHex[out[i] >> 4];
    hex += kHex[out[i] & 15];
  }
  return hex;
}

}  // namespace lagoon::util
