#include "lagoon/http/request_id.hpp"

#include <cstdint>
#include <iterator>
#include <random>
#include <stdexcept>

#include <openssl/rand.h>

namespace lagoon::http {

bool sane_request_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > kMaxRequestIdLength) return false;
  for (char c : id) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
              c == '_' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

namespace {

// Request ids must be unique, not secret: a per-thread generator seeded once from OpenSSL's RAND
// (256 bits) is enough, and spares each request RAND_bytes' DRBG round and getpid() (its fork check).
// Lagoon never forks, so no two processes share a stream.
std::mt19937_64 seeded_generator() {
  std::uint32_t seed[8];
  if (RAND_bytes(reinterpret_cast<unsigned char*>(seed), sizeof seed) != 1) throw std::runtime_error("RAND_bytes failed");
  std::seed_seq seq(std::begin(seed), std::end(seed));
  return std::mt19937_64(seq);
}

}  // namespace

std::string new_request_id() {
  thread_local std::mt19937_64 generator = seeded_generator();
  std::uint8_t b[16];
  const std::uint64_t hi = generator(), lo = generator();
  for (int i = 0; i < 8; ++i) {
    b[i] = static_cast<std::uint8_t>(hi >> (56 - 8 * i));
    b[8 + i] = static_cast<std::uint8_t>(lo >> (56 - 8 * i));
  }
  b[6] = (b[6] & 0x0F) | 0x40;  // version 4 (RFC 9562)
  b[8] = (b[8] & 0x3F) | 0x80;  // variant 10
  static constexpr char hex[] = "0123456789abcdef";
  std::string s(36, '-');
  char* out = s.data();
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) ++out;  // over a '-'
    *out++ = hex[b[i] >> 4];
    *out++ = hex[b[i] & 0xF];
  }
  return s;
}

std::string choose_request_id(std::string_view client_id) {
  return sane_request_id(client_id) ? std::string(client_id) : new_request_id();
}

}  // namespace lagoon::http
