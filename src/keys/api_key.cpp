#include "lagoon/keys/api_key.hpp"

#include <stdexcept>
#include <string>

#include <boost/crc.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>

namespace lagoon::keys {
namespace {

constexpr std::string_view kAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

std::uint32_t crc32_of(std::string_view s) {
  boost::crc_32_type crc;
  crc.process_bytes(s.data(), s.size());
  return crc.checksum();
}

bool is_base62(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

// Base62 of a 256-bit big-endian number by repeated division; 43 digits always suffice.
std::string base62_of_bytes(const unsigned char* bytes, std::size_t n, std::size_t width) {
  std::string digits(n, '\0');
  std::copy(bytes, bytes + n, digits.begin());
  std::string out(width, '0');
  for (std::size_t pos = width; pos-- > 0;) {
    unsigned rem = 0;
    for (auto& d : digits) {
      unsigned cur = (rem << 8) | static_cast<unsigned char>(d);
      d = static_cast<char>(cur / 62);
      rem = cur % 62;
    }
    out[pos] = kAlphabet[rem];
  }
  return out;
}

}  // namespace

std::string base62_fixed(std::uint32_t value, std::size_t width) {
  std::string out(width, '0');
  for (std::size_t pos = width; pos-- > 0 && value > 0;) {
    out[pos] = kAlphabet[value % 62];
    value /= 62;
  }
  return out;
}

std::string display_prefix(std::string_view key) { return std::string(key.substr(0, kPrefixLength)); }

std::string log_prefix(std::string_view display_prefix) {
  if (display_prefix.substr(0, kKeyMarker.size()) != kKeyMarker) return "…";
  return std::string(kKeyMarker) + "…" + std::string(display_prefix.substr(kKeyMarker.size(), 5));
}

namespace {

// An HMAC-SHA256 context already keyed with the pepper, one per thread: each digest re-initialises it
// with the key it has (EVP_MAC_init without a key) instead of fetching the algorithm and deriving the
// key pads again, as OpenSSL 3's one-shot HMAC() does on every call, or duplicating the context (a
// dozen allocations a digest: bench/mallocs.sh).
class KeyedMac {
 public:
  ~KeyedMac() { reset(); }
  EVP_MAC_CTX* for_pepper(std::string_view pepper) {
    if (ctx_ && pepper == pepper_) return ctx_;
    reset();
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (!mac) return nullptr;
    ctx_ = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    char digest_name[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest_name, 0), OSSL_PARAM_construct_end()};
    if (!ctx_ || !EVP_MAC_init(ctx_, reinterpret_cast<const unsigned char*>(pepper.data()), pepper.size(), params)) {
      reset();
      return nullptr;
    }
    pepper_.assign(pepper);
    return ctx_;
  }

 private:
  void reset() {
    EVP_MAC_CTX_free(ctx_);
    ctx_ = nullptr;
    OPENSSL_cleanse(pepper_.data(), pepper_.size());
    pepper_.clear();
  }
  EVP_MAC_CTX* ctx_ = nullptr;
  std::string pepper_;
};

// HMAC-SHA256(pepper, a + b).
Digest mac(std::string_view pepper, std::string_view a, std::string_view b) {
  thread_local KeyedMac keyed;
  Digest out{};
  std::size_t len = 0;
  EVP_MAC_CTX* ctx = keyed.for_pepper(pepper);
  const bool ok = ctx && EVP_MAC_init(ctx, nullptr, 0, nullptr) &&
                  EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(a.data()), a.size()) &&
                  EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(b.data()), b.size()) &&
                  EVP_MAC_final(ctx, out.data(), &len, out.size()) && len == out.size();
  if (!ok) throw std::runtime_error("HMAC-SHA256 failed");
  return out;
}

// Domain separation: the tag is never equal to any digest of a key.
constexpr std::string_view kTagLabel = "lagoon key tag v1:";

std::string tag_of(std::string_view pepper, std::string_view marker_and_random) {
  Digest m = mac(pepper, kTagLabel, marker_and_random);
  std::string tag = base62_of_bytes(m.data(), 8, kTagChars);
  OPENSSL_cleanse(m.data(), m.size());
  return tag;
}

}  // namespace

Digest digest(std::string_view pepper, std::string_view key) { return mac(pepper, {}, key); }

std::string seal(std::string_view pepper, std::string_view random_chars) {
  std::string key(kKeyMarker);
  key += random_chars;
  key += tag_of(pepper, key);
  key += base62_fixed(crc32_of(key), kChecksumChars);
  return key;
}

std::string generate(std::string_view pepper) {
  unsigned char random[32];
  if (RAND_bytes(random, sizeof random) != 1) throw std::runtime_error("RAND_bytes failed");
  std::string random_chars = base62_of_bytes(random, sizeof random, kRandomChars);
  OPENSSL_cleanse(random, sizeof random);
  std::string key = seal(pepper, random_chars);
  OPENSSL_cleanse(random_chars.data(), random_chars.size());
  return key;
}

Format format_of(std::string_view key) {
  if (key.size() != kKeyLength && key.size() != kLegacyKeyLength) return Format::malformed;
  if (key.substr(0, kKeyMarker.size()) != kKeyMarker) return Format::malformed;
  bool alphabet_ok = true;
  for (char c : key.substr(kKeyMarker.size())) alphabet_ok &= is_base62(c);
  const std::size_t body = key.size() - kChecksumChars;
  const std::string expected = base62_fixed(crc32_of(key.substr(0, body)), kChecksumChars);
  const bool checksum_ok = CRYPTO_memcmp(expected.data(), key.data() + body, kChecksumChars) == 0;
  if (!(alphabet_ok && checksum_ok)) return Format::malformed;
  return key.size() == kKeyLength ? Format::tagged : Format::legacy;
}

bool tag_matches(std::string_view pepper, std::string_view key) {
  if (key.size() != kKeyLength) return false;
  const std::size_t tag_at = kKeyMarker.size() + kRandomChars;
  const std::string expected = tag_of(pepper, key.substr(0, tag_at));
  return CRYPTO_memcmp(expected.data(), key.data() + tag_at, kTagChars) == 0;
}

bool digests_equal(const Digest& a, const Digest& b) { return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0; }

std::string to_hex(const Digest& d) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string s(d.size() * 2, '0');
  for (std::size_t i = 0; i < d.size(); ++i) {
    s[2 * i] = hex[d[i] >> 4];
    s[2 * i + 1] = hex[d[i] & 0xF];
  }
  return s;
}

std::optional<Digest> from_hex(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Digest d{};
  for (std::size_t i = 0; i < d.size(); ++i) {
    int hi = nibble(hex[2 * i]);
    int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    d[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return d;
}

}  // namespace lagoon::keys
