// util::make_recycled: storage is reused by the thread that freed it, every object is constructed and
// destroyed exactly once, a constructor that throws gives its storage back, and an object may be freed
// on another thread than the one that made it.
#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>
#include <vector>

#include "lagoon/util/recycled.hpp"

namespace {

struct Big {
  static inline int alive = 0;
  explicit Big(int v, bool fail = false) : value(v) {
    if (fail) throw std::runtime_error("refused");
    ++alive;
  }
  ~Big() { --alive; }
  int value;
  char payload[1500]{};  // above glibc's per-thread cache, as the objects this is for
};

}  // namespace

TEST(Recycled, StorageFreedIsReusedAndEachObjectLivesOnce) {
  const void* first = nullptr;
  {
    auto a = lagoon::util::make_recycled<Big>(1);
    EXPECT_EQ(a->value, 1);
    EXPECT_EQ(Big::alive, 1);
    first = a.get();
  }
  EXPECT_EQ(Big::alive, 0);
  auto b = lagoon::util::make_recycled<Big>(2);
  EXPECT_EQ(b.get(), first);  // the block just freed, not a new one
  EXPECT_EQ(b->value, 2);
  EXPECT_THROW(lagoon::util::make_recycled<Big>(3, true), std::runtime_error);
  EXPECT_EQ(Big::alive, 1);
  auto c = lagoon::util::make_recycled<Big>(4);  // the failed one's storage came back: no leak (ASan)
  EXPECT_NE(c.get(), b.get());
}

TEST(Recycled, AnObjectMayBeFreedOnAnotherThreadAndManyAtOnceAreFine) {
  std::vector<lagoon::util::Recycled<Big>> made;
  for (int i = 0; i < 300; ++i) made.push_back(lagoon::util::make_recycled<Big>(i));  // more than one cache keeps
  EXPECT_EQ(Big::alive, 300);
  std::thread other([&] { made.clear(); });  // that thread's cache keeps some, frees the rest, then ends
  other.join();
  EXPECT_EQ(Big::alive, 0);
  auto again = lagoon::util::make_recycled<Big>(7);
  EXPECT_EQ(again->value, 7);
}
