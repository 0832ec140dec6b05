#include <gtest/gtest.h>

#include <set>

#include <boost/crc.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "lagoon/keys/api_key.hpp"

namespace keys = lagoon::keys;

namespace {
constexpr std::string_view kPepper = "unit-test-pepper-0123456789abcdef0123";
}  // namespace

TEST(ApiKey, GeneratedKeysHaveTheDocumentedShape) {
  const std::string k = keys::generate(kPepper);
  EXPECT_EQ(k.size(), keys::kKeyLength);
  EXPECT_EQ(k.rfind("sk-lgn_", 0), 0u);
  EXPECT_TRUE(keys::well_formed(k));
  EXPECT_EQ(keys::format_of(k), keys::Format::tagged);
  EXPECT_TRUE(keys::tag_matches(kPepper, k));
  EXPECT_EQ(keys::display_prefix(k), k.substr(0, 12));
}

TEST(ApiKey, GeneratedKeysAreDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(keys::generate(kPepper));
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(ApiKey, EverySingleCharacterTypoIsCaught) {
  const std::string k = keys::generate(kPepper);
  int caught = 0, tried = 0;
  for (std::size_t i = keys::kKeyMarker.size(); i < k.size(); ++i) {
    std::string t = k;
    t[i] = t[i] == 'a' ? 'b' : 'a';
    ++tried;
    caught += keys::well_formed(t) ? 0 : 1;
  }
  EXPECT_EQ(caught, tried);  // CRC32 detects every single-symbol change
}

TEST(ApiKey, MalformedKeysAreRefused) {
  const std::string k = keys::generate(kPepper);
  EXPECT_FALSE(keys::well_formed(""));
  EXPECT_FALSE(keys::well_formed(k.substr(0, k.size() - 1)));
  EXPECT_FALSE(keys::well_formed(k + "0"));
  EXPECT_FALSE(keys::well_formed("sk-abc" + k.substr(6)));
  std::string bad_char = k;
  bad_char[10] = '-';
  EXPECT_FALSE(keys::well_formed(bad_char));
  EXPECT_FALSE(keys::well_formed("Bearer " + k));
}

TEST(ApiKey, Base62IsFixedWidth) {
  EXPECT_EQ(keys::base62_fixed(0, 6), "000000");
  EXPECT_EQ(keys::base62_fixed(61, 3), "00z");
  EXPECT_EQ(keys::base62_fixed(62, 3), "010");
  EXPECT_EQ(keys::base62_fixed(0xFFFFFFFFu, 6), "4gfFC3");
}

TEST(ApiKey, DigestIsHmacSha256OfPepperAndKey) {
  // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
  auto d = keys::digest("Jefe", "what do ya want for nothing?");
  EXPECT_EQ(keys::to_hex(d), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(ApiKey, DigestDependsOnThePepper) {
  const std::string k = keys::generate(kPepper);
  EXPECT_FALSE(keys::digests_equal(keys::digest("pepper-one-0123456789abcdef01234", k),
                                   keys::digest("pepper-two-0123456789abcdef01234", k)));
  EXPECT_TRUE(keys::digests_equal(keys::digest("p", k), keys::digest("p", k)));
}

TEST(ApiKey, HexRoundTrip) {
  auto d = keys::digest("p", "k");
  auto back = keys::from_hex(keys::to_hex(d));
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(keys::digests_equal(*back, d));
  EXPECT_FALSE(keys::from_hex("zz").has_value());
  EXPECT_FALSE(keys::from_hex(std::string(64, 'g')).has_value());
}

// Anyone can compute a CRC32: a key with a valid checksum but a tag the server did not make is refused
// without a lookup.
TEST(ApiKey, OnlyThePepperMakesAValidTag) {
  const std::string k = keys::generate(kPepper);
  EXPECT_FALSE(keys::tag_matches("another-pepper-0123456789abcdef0123", k));
  // Same random part, tag of another pepper: well-formed to the public, refused by the tag.
  const std::string random_part = k.substr(keys::kKeyMarker.size(), keys::kRandomChars);
  const std::string forged = keys::seal("another-pepper-0123456789abcdef0123", random_part);
  EXPECT_TRUE(keys::well_formed(forged));
  EXPECT_FALSE(keys::tag_matches(kPepper, forged));
  EXPECT_EQ(keys::seal(kPepper, random_part), k);  // the tag is a function of the random part
  // A changed random part with its checksum recomputed (what a forger can do) keeps the old tag.
  std::string body = k.substr(0, keys::kKeyLength - keys::kChecksumChars);
  body[10] = body[10] == 'a' ? 'b' : 'a';
  EXPECT_FALSE(keys::tag_matches(kPepper, body + "000000"));
}

TEST(ApiKey, LegacyKeysWithoutATagAreStillWellFormed) {
  const std::string k = keys::generate(kPepper);
  // A key as Lagoon made them before the tag: marker, random part, CRC32 of the two.
  const std::string body = k.substr(0, keys::kKeyMarker.size() + keys::kRandomChars);
  boost::crc_32_type crc;
  crc.process_bytes(body.data(), body.size());
  const std::string legacy = body + keys::base62_fixed(crc.checksum(), keys::kChecksumChars);
  EXPECT_EQ(legacy.size(), keys::kLegacyKeyLength);
  EXPECT_EQ(keys::format_of(legacy), keys::Format::legacy);
  EXPECT_FALSE(keys::tag_matches(kPepper, legacy));  // it has none: the caller looks it up instead
  std::string typo = legacy;
  typo[20] = typo[20] == 'a' ? 'b' : 'a';
  EXPECT_EQ(keys::format_of(typo), keys::Format::malformed);
}

// The digest is HMAC-SHA256(pepper, key) as OpenSSL's one-shot HMAC() computes it, every time: the
// per-thread context is re-initialised for each digest, tags computed in between included.
TEST(ApiKeyDigest, IsHmacSha256OfTheKeyOnEveryCall) {
  const std::string pepper = "unit-test-pepper-unit-test-pepper";
  for (int i = 0; i < 3; ++i) {
    const std::string key = lagoon::keys::generate(pepper);
    unsigned char expected[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), pepper.data(), static_cast<int>(pepper.size()), reinterpret_cast<const unsigned char*>(key.data()),
         key.size(), expected, &len);
    ASSERT_EQ(len, 32u);
    const auto d = lagoon::keys::digest(pepper, key);
    EXPECT_TRUE(std::equal(d.begin(), d.end(), expected));
    EXPECT_TRUE(lagoon::keys::tag_matches(pepper, key));
    EXPECT_EQ(lagoon::keys::digest(pepper, key), d);
  }
  // Another pepper on the same thread: the context is keyed again.
  const std::string other = "another-pepper-another-pepper-xx";
  const std::string key = lagoon::keys::generate(other);
  unsigned char expected[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), other.data(), static_cast<int>(other.size()), reinterpret_cast<const unsigned char*>(key.data()),
       key.size(), expected, &len);
  const auto d = lagoon::keys::digest(other, key);
  EXPECT_TRUE(std::equal(d.begin(), d.end(), expected));
}
