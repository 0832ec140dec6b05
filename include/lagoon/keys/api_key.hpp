// API keys: generation, format, tag and checksum validation, display prefix, and the stored digest.
//
// Format (after GitHub's token design): "sk-lgn_" + 43 base62 characters of 256 random bits +
// 11 base62 characters of a tag + 6 base62 characters of the CRC32 of everything before them.
// The tag is the first 64 bits of HMAC-SHA256(pepper, "lagoon key tag v1:" + marker + random part):
// only the server can make one, so a made-up key — however well-formed — is refused in-process,
// without touching Redis or Postgres (a public checksum alone let anyone mint keys that each cost a
// Redis and a Postgres lookup). The CRC32 stays so that typos and secret scanners need no secret.
// Keys made before the tag existed ("legacy": the same without the tag, 56 characters) keep working
// through the lookup; operators rotate them (lagoon_auth_legacy_keys_total counts their use).
// Only HMAC-SHA256(pepper, key) is stored.
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
inline constexpr std::size_t kTagChars = 11;       // ceil(64 / log2(62))
inline constexpr std::size_t kChecksumChars = 6;   // ceil(32 / log2(62))
inline constexpr std::size_t kKeyLength = kKeyMarker.size() + kRandomChars + kTagChars + kChecksumChars;
inline constexpr std::size_t kLegacyKeyLength = kKeyMarker.size() + kRandomChars + kChecksumChars;
inline constexpr std::size_t kPrefixLength = 12;   // shown to humans and in logs; never unique, never secret

using Digest = std::array<std::uint8_t, 32>;

// A fresh tagged key from OpenSSL's CSPRNG. Throws std::runtime_error if RAND_bytes or HMAC fails.
std::string generate(std::string_view pepper);

// The tagged key whose random part is `random_chars` (43 base62 characters); generate() uses it, tests
// use it to make keys that are valid but unknown.
std::string seal(std::string_view pepper, std::string_view random_chars);

enum class Format { malformed, legacy, tagged };

// What the public checks say: marker, length, alphabet and checksum (no secret needed). Runs in time
// independent of where a mismatch is, apart from the length check.
Format format_of(std::string_view key);
inline bool well_formed(std::string_view key) { return format_of(key) != Format::malformed; }

// For a tagged key: whether its tag is the one this pepper makes (constant-time compare).
bool tag_matches(std::string_view pepper, std::string_view key);

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
