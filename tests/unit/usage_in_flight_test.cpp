// The in-flight usage table: requests a killed process left open become rows at the next start, once.
// A process "dies" here by destroying the table without closing its entries — what SIGKILL leaves is
// the same file (the kernel keeps a shared mapping's pages either way).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "lagoon/usage/in_flight.hpp"
#include "lagoon/usage/ring.hpp"

using namespace lagoon::usage;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kStartedUs = 1'764'000'000'000'000;

Record opened(const std::string& id) {
  Record r;
  r.request_id = id;
  r.api_key_id = 7;
  r.user_id = 3;
  r.started_at_us = kStartedUs;
  return r;
}

class Dir {
 public:
  Dir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("lagoon-inflight-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~Dir() { fs::remove_all(path_); }
  std::string table() const { return (path_ / "in-flight.table").string(); }
  std::string ring() const { return (path_ / "queue.ring").string(); }

 private:
  fs::path path_;
};

// "t3-17"; appending, not operator+ on a literal, which trips a false -Wrestrict in GCC 12 at -O3.
std::string name(std::string prefix, int i, int j = -1) {
  prefix += std::to_string(i);
  if (j >= 0) (prefix += '-') += std::to_string(j);
  return prefix;
}

std::set<std::string> ids(const InFlight& t) {
  std::set<std::string> out;
  for (const auto& r : t.recovered()) out.insert(r.record.request_id);
  return out;
}

void overwrite(const std::string& path, std::size_t from, std::size_t to, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(from));
  for (std::size_t i = from; i < to; ++i) f.put(static_cast<char>(rng()));
}

}  // namespace

TEST(UsageInFlight, RequestsLeftOpenBecomeInterruptedRowsWithEstimatedTokens) {
  Dir d;
  {
    InFlight t(d.table(), 8);
    auto a = t.open(opened("a"));
    Record known = opened("a");
    known.model = "llama-3.3-70b";
    known.session_id = "5b0d8d4e-1f6a-4a57-9a55-0a8e7b7f0c11";
    known.stream = true;
    known.status_code = 200;
    a.note(known);
    a.note_prompt(120);
    a.note_completion(30);
    a.note_completion(45);  // the latest count wins
    t.open(opened("b"));
    auto done = t.open(opened("done"));
    t.close(done);
    EXPECT_FALSE(done);
    EXPECT_EQ(t.in_use(), 2u);
  }  // killed with a and b open
  InFlight t(d.table(), 8);
  ASSERT_EQ(ids(t), (std::set<std::string>{"a", "b"}));
  EXPECT_EQ(t.in_use(), 2u);  // their slots stay taken until the rows are safe elsewhere
  for (const auto& [slot, r] : t.recovered()) {
    EXPECT_EQ(r.outcome, "interrupted");
    EXPECT_TRUE(r.tokens_estimated);
    EXPECT_EQ(r.api_key_id, 7);
    EXPECT_GE(r.duration_ms, 0.0);
    if (r.request_id != "a") continue;
    EXPECT_EQ(r.model, "llama-3.3-70b");
    EXPECT_EQ(r.session_id, "5b0d8d4e-1f6a-4a57-9a55-0a8e7b7f0c11");
    EXPECT_TRUE(r.stream);
    EXPECT_EQ(r.status_code, 200);
    EXPECT_EQ(r.prompt_tokens, 120);
    EXPECT_EQ(r.completion_tokens, 45);
    EXPECT_EQ(r.total_tokens, 165);
  }
}

TEST(UsageInFlight, AFinalRecordWrittenBeforeTheCrashIsRecoveredAsItselfNeverAsInterrupted) {
  Dir d;
  Record final_record = opened("f");
  final_record.outcome = "ok";
  final_record.prompt_tokens = 10;
  final_record.completion_tokens = 20;
  final_record.total_tokens = 30;
  final_record.duration_ms = 12.5;
  {
    InFlight t(d.table(), 4);
    auto e = t.open(opened("f"));
    e.note_completion(999);
    t.finish(e, final_record);
  }  // killed between the push to the ring and the slot's release
  InFlight t(d.table(), 4);
  ASSERT_EQ(t.recovered().size(), 1u);
  EXPECT_EQ(t.recovered()[0].record, final_record);
}

TEST(UsageInFlight, UnitsKnownBeforeTheCrashReachTheRecoveredRows) {
  // The slots hold encode()'s bytes, so what a request noted about its units (characters to speak,
  // images asked for) outlives the process like its model does.
  Dir d;
  Record speech = opened("speech");
  speech.units = 1200;
  speech.unit = Unit::characters;
  Record images = opened("images");
  images.outcome = "ok";
  images.units = 4;
  images.unit = Unit::images;
  {
    InFlight t(d.table(), 4);
    auto a = t.open(opened("speech"));
    a.note(speech);
    auto b = t.open(opened("images"));
    t.finish(b, images);
  }  // killed: speech still open, images finished but not yet released
  InFlight t(d.table(), 4);
  ASSERT_EQ(ids(t), (std::set<std::string>{"speech", "images"}));
  for (const auto& [slot, r] : t.recovered()) {
    if (r.request_id == "images") {
      EXPECT_EQ(r, images);
      continue;
    }
    EXPECT_EQ(r.outcome, "interrupted");
    EXPECT_EQ(r.units, 1200);
    EXPECT_EQ(r.unit, Unit::characters);
  }
}

TEST(UsageInFlight, ReleasedAndClosedSlotsAreReusedAndNotRecoveredAgain) {
  Dir d;
  {
    InFlight t(d.table(), 4);
    for (int i = 0; i < 100; ++i) {
      auto e = t.open(opened(name("r", i)));
      ASSERT_TRUE(e);
      t.close(e);
    }
    t.open(opened("left"));
  }
  {
    InFlight t(d.table(), 4);
    ASSERT_EQ(t.recovered().size(), 1u);
    t.release_recovered(0);
    EXPECT_EQ(t.in_use(), 0u);
  }
  InFlight t(d.table(), 4);
  EXPECT_TRUE(t.recovered().empty());
}

TEST(UsageInFlight, AFullTableGivesAnEmptyEntryThatIgnoresNotesAndFreesUpOnClose) {
  Dir d;
  InFlight t(d.table(), 3);
  std::vector<InFlight::Entry> held;
  for (int i = 0; i < 3; ++i) held.push_back(t.open(opened(name("h", i))));
  for (auto& e : held) EXPECT_TRUE(e);
  auto none = t.open(opened("x"));
  EXPECT_FALSE(none);
  none.note(opened("x"));
  none.note_prompt(1);
  none.note_completion(1);
  t.finish(none, opened("x"));
  t.close(none);
  EXPECT_EQ(t.in_use(), 3u);
  t.close(held[1]);
  EXPECT_TRUE(t.open(opened("y")));
}

TEST(UsageInFlight, ConcurrentRequestsNeverShareASlot) {
  Dir d;
  constexpr int kThreads = 4, kRounds = 2000, kKept = 16;
  {
    InFlight t(d.table(), kThreads * kKept);
    std::vector<std::thread> threads;
    for (int th = 0; th < kThreads; ++th)
      threads.emplace_back([&t, th] {
        std::vector<InFlight::Entry> mine;
        for (int i = 0; i < kRounds; ++i) {
          auto e = t.open(opened(name("t", th, i)));
          ASSERT_TRUE(e);  // at most kKept held per thread: the table never fills
          e.note_completion(i);
          mine.push_back(e);
          if (static_cast<int>(mine.size()) == kKept && i < kRounds - 1) {
            for (auto& m : mine) t.close(m);
            mine.clear();
          }
        }
      });
    for (auto& th : threads) th.join();
  }
  // Each thread left its last kKept entries open: every one of them is there, none overwritten.
  InFlight t(d.table(), kThreads * kKept);
  std::set<std::string> expected;
  for (int th = 0; th < kThreads; ++th)
    for (int i = kRounds - kKept; i < kRounds; ++i) expected.insert(name("t", th, i));
  EXPECT_EQ(ids(t), expected);
}

TEST(UsageInFlight, AFileThatIsNotATableStartsAfresh) {
  Dir d;
  {
    std::ofstream f(d.table(), std::ios::binary);
    f << "LGNINFL1 torn while being created";  // shorter than a header
  }
  {
    InFlight t(d.table(), 4);
    EXPECT_TRUE(t.recovered().empty());
    EXPECT_EQ(t.capacity(), 4u);
    t.open(opened("a"));
  }
  overwrite(d.table(), 0, 64 * 1024, 7);  // header and slots: noise
  InFlight t(d.table(), 4);
  EXPECT_TRUE(t.recovered().empty());
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(t.open(opened(name("n", i))));
}

TEST(UsageInFlight, GarbageSlotsAreCountedAndFreedNeverRecovered) {
  Dir d;
  {
    InFlight t(d.table(), 4);
    for (int i = 0; i < 4; ++i) t.open(opened(name("g", i)));
  }
  overwrite(d.table(), 4096, fs::file_size(d.table()), 11);  // every slot, the header kept
  {
    InFlight t(d.table(), 4);
    EXPECT_TRUE(t.recovered().empty());
    EXPECT_EQ(t.unreadable(), 4u);
    EXPECT_EQ(t.in_use(), 0u);
  }
  InFlight t(d.table(), 4);
  EXPECT_EQ(t.unreadable(), 0u);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(t.open(opened(name("n", i))));
}

TEST(UsageInFlight, ASecondProcessCannotOpenTheSameTable) {
  Dir d;
  InFlight t(d.table(), 2);
  EXPECT_THROW(InFlight(d.table(), 2), std::runtime_error);
}

TEST(UsageInFlight, HandOverQueuesEachRowOnceEvenWhenTheFirstHandOverWasKilledHalfway) {
  Dir d;
  {
    InFlight t(d.table(), 8);
    for (int i = 0; i < 3; ++i) t.open(opened(name("k", i)));
  }
  {
    // A start that pushed the rows to the ring and was killed before it freed their slots.
    InFlight t(d.table(), 8);
    Ring ring(d.ring(), 16);
    for (const auto& r : t.recovered()) ASSERT_TRUE(ring.try_push(r.record));
  }
  {
    InFlight t(d.table(), 8);
    Ring ring(d.ring(), 16);
    ASSERT_EQ(ring.recovered().size(), 3u);
    const auto h = recover_into(t, ring);
    EXPECT_EQ(h.queued, 0u);
    EXPECT_EQ(h.duplicates, 3u);
    EXPECT_EQ(ring.depth(), 3u);  // only the ring's own copies
  }
  InFlight t(d.table(), 8);
  EXPECT_TRUE(t.recovered().empty());
  Ring ring(d.ring(), 16);
  EXPECT_EQ(ring.recovered().size(), 3u);
  for (const auto& r : ring.recovered()) EXPECT_EQ(r.outcome, "interrupted");
}

TEST(UsageInFlight, HandOverPushesToTheRingThenFreesTheSlots) {
  Dir d;
  {
    InFlight t(d.table(), 8);
    for (int i = 0; i < 3; ++i) t.open(opened(name("q", i)));
  }
  {
    InFlight t(d.table(), 8);
    Ring ring(d.ring(), 16);
    const auto h = recover_into(t, ring);
    EXPECT_EQ(h.queued, 3u);
    EXPECT_EQ(t.in_use(), 0u);
  }
  InFlight t(d.table(), 8);
  EXPECT_TRUE(t.recovered().empty());
  Ring ring(d.ring(), 16);
  std::set<std::string> queued;
  for (const auto& r : ring.recovered()) queued.insert(r.request_id);
  EXPECT_EQ(queued, (std::set<std::string>{"q0", "q1", "q2"}));
}

TEST(UsageInFlight, RowsTheRingHasNoRoomForKeepTheirSlotsForTheNextStart) {
  Dir d;
  {
    InFlight t(d.table(), 8);
    for (int i = 0; i < 3; ++i) t.open(opened(name("p", i)));
    Ring ring(d.ring(), 2);
    ASSERT_TRUE(ring.try_push(opened("x1")));
    ASSERT_TRUE(ring.try_push(opened("x2")));
  }
  {
    InFlight t(d.table(), 8);
    Ring ring(d.ring(), 2);
    const auto h = recover_into(t, ring);
    EXPECT_EQ(h.kept, 3u);
  }
  InFlight t(d.table(), 8);
  EXPECT_EQ(t.recovered().size(), 3u);
}

TEST(UsageInFlight, InterruptedRecordEstimatesAndClampsWhatTheSlotHeld) {
  Record last = opened("i");
  last.duration_ms = 0;
  auto r = interrupted_record(last, 100, 40, kStartedUs + 2'500'000);
  EXPECT_EQ(r.outcome, "interrupted");
  EXPECT_TRUE(r.tokens_estimated);
  EXPECT_EQ(r.prompt_tokens, 100);
  EXPECT_EQ(r.completion_tokens, 40);
  EXPECT_EQ(r.total_tokens, 140);
  EXPECT_DOUBLE_EQ(r.duration_ms, 2500.0);

  last.prompt_tokens = 150;  // the upstream had already reported more than the estimate
  last.completion_tokens = 10;
  r = interrupted_record(last, 100, 40, kStartedUs - 1);  // a clock that went back: no negative duration
  EXPECT_EQ(r.prompt_tokens, 150);
  EXPECT_EQ(r.completion_tokens, 40);
  EXPECT_EQ(r.duration_ms, 0.0);

  r = interrupted_record(opened("i"), -5, std::int64_t{1} << 40, 0);  // a damaged slot
  EXPECT_EQ(r.prompt_tokens, 0);
  EXPECT_EQ(r.completion_tokens, INT32_MAX);
  EXPECT_EQ(r.total_tokens, INT32_MAX);
}
