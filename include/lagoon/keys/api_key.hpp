// API keys: generation, format and checksum validation, display prefix, and the stored digest.
//
// Format (after GitHub's token design): "sk-lgn_" + 43 base62 characters of 256 random bits +
// 6 base62 characters of the CRC32 of everything before them. The checksum lets a mistyped or
// made-up key be refused without touching Redis or Postgres. Only HMAC-SHA256(pepper, key) is stored.
// Pure functions over OpenSSL; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lagoon::keys {

inline constexpr std::string_view kKeyMarker = "sk-lgn_";
inline constexpr std::size_t kRandomChars = 43;    // ceil(256 / log2(62))
inline constexpr std::size_t kChecksumChars = 6;   // ceil(32 / log2(62))
inline constexpr std::size_t kKeyLength = kKeyMarker.size() + kRandomChars + kChecksumChars;
inline constexpr std::size_t kPrefixLength = 12;   // shown to humans and in logs; never unique, never secret

using Digest = std::array<std::uint8_t, 32>;

// A fresh key from OpenSSL's CSPRNG. Throws std::runtime_error if RAND_bytes fails.
std::string generate();

// True when `key` has the marker, length, alphabet and a matching checksum. Runs in time independent
// of where a mismatch is, apart from the length check.
bool well_formed(std::string_view key);

// The human-readable prefix stored in api_keys.prefix.
std::string display_prefix(std::string_view key);

// The display prefix as logs show it, "sk-lgn_…AbCdE": recognisable, yet no 8 consecutive characters
// of any key appear in a log line (the scheme marker alone is 7).
std::string log_prefix(std::string_view display_prefix);

// HMAC-SHA256(pepper, key).
Digest digest(std::string_view pepper, std::string_view key);

// Constant-time equality (CRYPTO_memcmp).
bool digests_equal(const Digest& a, const Digest& b);

std::string to_hex(const Digest& d);
std::optional<Digest> from_hex(std::string_view hex);

// Base62 of `value` in exactly `width` characters (leading '0's); exposed for tests.
std::string base62_fixed(std::uint32_t value, std::size_t width);

}  // namespace lagoon::keys
