// An upstream's Retry-After, which the gateway waits on before a retry and passes on with a 429: only a
// finite, non-negative number of seconds is used, and never more than the cap.
#include <gtest/gtest.h>

#include "lagoon/upstream/retry_after.hpp"

using lagoon::upstream::retry_after_delay;
using lagoon::upstream::retry_after_for_client;
using namespace std::chrono_literals;

TEST(RetryAfter, PlainSecondsAreUsedUpToTheCap) {
  EXPECT_EQ(retry_after_delay("0", 2s), 0ms);
  EXPECT_EQ(retry_after_delay("1", 2s), 1000ms);
  EXPECT_EQ(retry_after_delay(" 0.25\t", 2s), 250ms);
  EXPECT_EQ(retry_after_delay("120", 2s), 2000ms);
  EXPECT_EQ(retry_after_delay("1e3", 2s), 2000ms);
  EXPECT_EQ(retry_after_delay("1e300", 2s), 2000ms);
}

TEST(RetryAfter, ValuesThatAreNotAFiniteNonNegativeNumberAreIgnored) {
  for (const char* v : {"1e400", "-1e400", "nan", "NaN", "-nan", "inf", "-inf", "infinity", "-5", "-0.001", "",
                        "  ", "abc", "5s", "1 2", "+5", "0x10", "Wed, 21 Oct 2015 07:28:00 GMT"}) {
    SCOPED_TRACE(v);
    EXPECT_EQ(retry_after_delay(v, 2s), std::nullopt);
    EXPECT_EQ(retry_after_for_client(std::string(v), 3600s), std::nullopt);
  }
}

TEST(RetryAfter, WhatAClientIsToldIsWholeSecondsRoundedUpAndCapped) {
  EXPECT_EQ(retry_after_for_client(std::nullopt, 3600s), std::nullopt);
  EXPECT_EQ(retry_after_for_client("0", 3600s), "0");
  EXPECT_EQ(retry_after_for_client("0.2", 3600s), "1");
  EXPECT_EQ(retry_after_for_client("30", 3600s), "30");
  EXPECT_EQ(retry_after_for_client("86400", 3600s), "3600");
  EXPECT_EQ(retry_after_for_client("1e300", 3600s), "3600");
}
