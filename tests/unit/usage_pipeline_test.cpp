// The usage pipeline's delivery logic against a fake Store (no Postgres): every record written once in
// batches; a record the store refuses set aside and the rest written; while the store is away records
// wait in the ring, spill to the journal when the ring fills, and are replayed once it is back; stopping
// with the store away leaves everything in the journal for the next start.
// Waits are for a condition, with a generous deadline: never for a length of time.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "lagoon/usage/pipeline.hpp"
#include "support/temp_dir.hpp"

using namespace lagoon;
using namespace std::chrono_literals;

namespace {

class FakeStore final : public usage::Store {
 public:
  usage::Stored write(std::span<const usage::Record> batch) override {
    std::lock_guard lock(mutex_);
    if (!up_) return {usage::Stored::Status::transient, {}, "the store is away"};
    for (const auto& r : batch)
      if (refused_.count(r.request_id)) return {usage::Stored::Status::refused, {}, "refused " + r.request_id};
    usage::WriteResult counts;
    for (const auto& r : batch) (ids_.insert(r.request_id).second ? counts.inserted : counts.duplicates)++;
    return {usage::Stored::Status::written, counts, {}};
  }
  void set_up(bool up) {
    std::lock_guard lock(mutex_);
    up_ = up;
  }
  void refuse(const std::string& id) {
    std::lock_guard lock(mutex_);
    refused_.insert(id);
  }
  std::set<std::string> ids() {
    std::lock_guard lock(mutex_);
    return ids_;
  }

 private:
  std::mutex mutex_;
  bool up_ = true;
  std::set<std::string> refused_;
  std::set<std::string> ids_;  // each record stored, once
};

usage::Record record(int i) {
  usage::Record r;
  r.request_id = "req-" + std::to_string(i);
  r.api_key_id = 1;
  r.user_id = 1;
  r.outcome = "ok";
  r.status_code = 200;
  return r;
}

std::set<std::string> ids_upto(int n) {
  std::set<std::string> s;
  for (int i = 0; i < n; ++i) s.insert(record(i).request_id);
  return s;
}

// Polls `done` until it holds or 20 s pass.
template <class F>
bool eventually(F done) {
  for (auto until = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < until;) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

class PipelineTest : public ::testing::Test {
 protected:
  PipelineTest() {
    cfg_.usage_dir = dir_.path().string();
    cfg_.usage_queue_capacity = 64;
    cfg_.usage_batch_size = 8;
    cfg_.usage_flush_interval = 5ms;
    cfg_.usage_spill_after = 3600s;  // spills here come from a filling ring, never from a clock
    cfg_.max_connections = 16;
  }
  std::uint64_t counter(const char* name) { return registry_.counter(name, "").value(); }

  test::TempDir dir_;
  config::Config cfg_;
  metrics::Registry registry_;
  FakeStore store_;
};

TEST_F(PipelineTest, EveryRecordIsWrittenOnceInBatches) {
  usage::Pipeline p(cfg_, store_, registry_);
  p.start();
  // 40 of 64: below the three quarters at which the journal takes records to keep the ring from filling.
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(p.push(record(i)));
  p.stop(10s);
  EXPECT_EQ(store_.ids(), ids_upto(40));
  EXPECT_EQ(counter("lagoon_usage_flushed_total"), 40u);
  EXPECT_EQ(counter("lagoon_usage_journalled_total"), 0u);
}

TEST_F(PipelineTest, ARecordTheStoreRefusesIsSetAsideAndTheRestOfItsBatchWritten) {
  store_.refuse("req-5");
  usage::Pipeline p(cfg_, store_, registry_);
  p.start();
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(p.push(record(i)));
  p.stop(10s);
  auto expected = ids_upto(8);
  expected.erase("req-5");
  EXPECT_EQ(store_.ids(), expected);
  EXPECT_EQ(counter("lagoon_usage_dead_lettered_total"), 1u);
  std::ifstream dead(dir_.path() / "journal" / "dead-letter.jsonl");
  std::stringstream text;
  text << dead.rdbuf();
  EXPECT_NE(text.str().find("req-5"), std::string::npos);
}

TEST_F(PipelineTest, WhileTheStoreIsAwayRecordsSpillToTheJournalAsTheRingFillsAndAreReplayedWhenItIsBack) {
  store_.set_up(false);
  usage::Pipeline p(cfg_, store_, registry_);
  p.start();
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(p.push(record(i)));  // past half of the 64-record ring
  ASSERT_TRUE(eventually([&] { return counter("lagoon_usage_journalled_total") > 0; }));
  EXPECT_TRUE(store_.ids().empty());
  store_.set_up(true);
  ASSERT_TRUE(eventually([&] { return store_.ids().size() == 40; }));
  ASSERT_TRUE(eventually([&] { return p.idle(); }));
  p.stop(10s);
  EXPECT_EQ(store_.ids(), ids_upto(40));
  EXPECT_GT(counter("lagoon_usage_replayed_total"), 0u);
}

TEST_F(PipelineTest, StoppingWhileTheStoreIsAwayLeavesEveryRecordForTheNextStart) {
  store_.set_up(false);
  {
    usage::Pipeline p(cfg_, store_, registry_);
    p.start();
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(p.push(record(i)));
    p.stop(200ms);
  }
  EXPECT_TRUE(store_.ids().empty());
  store_.set_up(true);
  usage::Pipeline next(cfg_, store_, registry_);
  next.start();
  ASSERT_TRUE(eventually([&] { return store_.ids().size() == 10; }));
  next.stop(10s);
  EXPECT_EQ(store_.ids(), ids_upto(10));
}

}  // namespace
