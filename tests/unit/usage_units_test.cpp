// The usage pipeline's parts that need no Postgres: the record encodings, the crash-safe ring and the
// journal.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "lagoon/usage/journal.hpp"
#include "lagoon/usage/record.hpp"
#include "lagoon/usage/ring.hpp"
#include "lagoon/usage/writer.hpp"
#include "support/temp_dir.hpp"

using namespace lagoon::usage;
namespace fs = std::filesystem;

namespace {

Record sample(std::uint64_t i) {
  Record r;
  r.request_id = "req-" + std::to_string(i);
  r.api_key_id = 7;
  r.user_id = 3;
  r.session_id = "5b0d8d4e-1f6a-4a57-9a55-0a8e7b7f0c11";
  r.model = "llama-3.3-70b";
  r.stream = i % 2 == 0;
  r.status_code = 200;
  r.outcome = "ok";
  r.prompt_tokens = 12;
  r.completion_tokens = 34;
  r.total_tokens = 46;
  r.started_at_us = 1'764'000'000'000'000 + static_cast<std::int64_t>(i);
  r.duration_ms = 12.5;
  r.ttfb_ms = 3.25;
  return r;
}

using lagoon::test::TempDir;

}  // namespace

TEST(UsageRecord, SlotRoundTripKeepsEveryField) {
  std::byte slot[kSlotPayload];
  for (auto r : {sample(1), Record{"x", 1, 2, std::nullopt, std::nullopt, false, 499, "client_disconnect",
                                   std::nullopt, std::nullopt, std::nullopt, true, 5, 0.5, std::nullopt}}) {
    encode(r, slot);
    auto back = decode(slot);
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, r);
  }
}

TEST(UsageRecord, TheEndpointSurvivesTheSlotAndTheJournalAndOlderRecordsAreChat) {
  std::byte slot[kSlotPayload];
  for (const auto e : {lagoon::usage::Endpoint::chat, lagoon::usage::Endpoint::models, lagoon::usage::Endpoint::key}) {
    Record r = sample(2);
    r.endpoint = e;
    encode(r, slot);
    ASSERT_EQ(decode(slot)->endpoint, e);
    EXPECT_EQ(from_json(nlohmann::json::parse(to_json(r).dump())).endpoint, e);
  }
  // A slot written before the endpoint existed had zeros there; a journal line had no "endpoint".
  auto old_line = to_json(sample(3));
  old_line.erase("endpoint");
  EXPECT_EQ(from_json(old_line).endpoint, lagoon::usage::Endpoint::chat);
  old_line["endpoint"] = "telepathy";
  EXPECT_THROW(from_json(old_line), std::invalid_argument);
  // A number no endpoint has is a damaged slot, not a chat request.
  Record r = sample(4);
  encode(r, slot);
  const std::uint16_t bogus = 0x7777;
  std::memcpy(reinterpret_cast<char*>(slot) + 6, &bogus, sizeof bogus);  // after magic and flags
  EXPECT_FALSE(decode(slot));
}

TEST(UsageRecord, UnitsSurviveTheSlotAndTheJournalForEveryUnit) {
  std::byte slot[kSlotPayload];
  for (const auto u : {Unit::images, Unit::characters, Unit::seconds, Unit::bytes}) {
    Record r = sample(5);
    r.endpoint = Endpoint::audio;
    r.prompt_tokens = r.completion_tokens = r.total_tokens = std::nullopt;
    r.units = u == Unit::seconds ? 12.345678901234567 : 3;
    r.unit = u;
    // The longest strings: the units go after them and must still fit.
    r.request_id = std::string(kMaxRequestId, 'r');
    r.model = std::string(kMaxModel, 'm');
    r.outcome = std::string(kMaxOutcome, 'o');
    encode(r, slot);
    const auto back = decode(slot);
    ASSERT_TRUE(back) << unit_name(u);
    EXPECT_EQ(*back, r) << unit_name(u);
    const auto line = to_json(r);
    EXPECT_EQ(line.at("unit"), unit_name(u));
    EXPECT_EQ(from_json(nlohmann::json::parse(line.dump())), r) << unit_name(u);
  }
}

TEST(UsageRecord, ASlotWrittenBeforeUnitsExistedReadsAsItWasWritten) {
  // encode() of the commit before units (56502f3), for a models request: what a ring or in-flight file
  // holds when an upgraded binary recovers it. The bytes after it are stale (an earlier, longer record's)
  // and must not be read.
  const std::string old_hex =
      "3152554cfd000100070000000000000003000000000000000640624159440600"
      "00000000000029400000000000000a40c80000000c000000220000002e000000"
      "057265712d362435623064386434652d316636612d346135372d396135352d30"
      "61386537623766306331310d6c6c616d612d332e332d373062026f6b";
  std::byte slot[kSlotPayload];
  std::memset(slot, 0x5a, sizeof slot);
  for (std::size_t i = 0; i < old_hex.size() / 2; ++i)
    slot[i] = static_cast<std::byte>(std::stoi(old_hex.substr(2 * i, 2), nullptr, 16));
  Record expected = sample(6);
  expected.endpoint = Endpoint::models;
  const auto back = decode(slot);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->unit, Unit::none);
  EXPECT_FALSE(back->units);
  EXPECT_EQ(*back, expected);
  // A record without units is written exactly as before, so a binary rolled back reads it too.
  std::byte again[kSlotPayload] = {};
  encode(expected, again);
  EXPECT_EQ(std::memcmp(again, slot, old_hex.size() / 2), 0);
  EXPECT_EQ(again[old_hex.size() / 2], std::byte{0});
}

TEST(UsageRecord, AJournalLineWithoutUnitsHasNeitherKeyAndReadsAsNone) {
  const auto line = to_json(sample(6));
  EXPECT_FALSE(line.contains("units"));
  EXPECT_FALSE(line.contains("unit"));
  const auto back = from_json(nlohmann::json::parse(line.dump()));
  EXPECT_EQ(back.unit, Unit::none);
  EXPECT_FALSE(back.units);
}

TEST(UsageRecord, AUnitWithoutACountStaysSoForPostgresToRefuse) {
  // A producer's bug: neither the slot nor the journal turns it into 0 units.
  Record r = sample(8);
  r.unit = Unit::bytes;
  std::byte slot[kSlotPayload];
  encode(r, slot);
  ASSERT_TRUE(decode(slot));
  EXPECT_EQ(*decode(slot), r);
  EXPECT_EQ(from_json(nlohmann::json::parse(to_json(r).dump())), r);
}

TEST(UsageRecord, ADamagedUnitIsRefusedNotGuessed) {
  Record r = sample(7);
  r.units = 2;
  r.unit = Unit::images;
  std::byte slot[kSlotPayload];
  encode(r, slot);
  // The unit byte is the last one written: after the fixed part, four length-prefixed strings and the
  // double.
  const std::size_t strings = 4 + r.request_id.size() + r.session_id->size() + r.model->size() + r.outcome.size();
  const std::size_t unit_at = 64 + strings + sizeof(double);
  ASSERT_EQ(std::to_integer<int>(slot[unit_at]), static_cast<int>(Unit::images));
  for (const std::uint8_t bad : {std::uint8_t{0}, std::uint8_t{5}, std::uint8_t{0xff}}) {
    slot[unit_at] = std::byte{bad};  // 0 (none) where the flag says there are units, or no unit at all
    EXPECT_FALSE(decode(slot)) << int{bad};
  }
  auto line = to_json(r);
  line["unit"] = "furlongs";
  EXPECT_THROW(from_json(line), std::invalid_argument);
  line["unit"] = "";  // none is never written: a row with units has a unit
  EXPECT_THROW(from_json(line), std::invalid_argument);
}

TEST(UsageRecord, SlotCutsOverlongStringsAndRefusesGarbage) {
  Record r = sample(1);
  r.model = std::string(1000, 'm');
  std::byte slot[kSlotPayload];
  encode(r, slot);
  auto back = decode(slot);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->model->size(), kMaxModel);
  std::byte zero[kSlotPayload] = {};
  EXPECT_FALSE(decode(zero));
}

TEST(UsageRecord, CuttingAModelNameNeverSplitsAUtf8Character) {
  Record r = sample(1);
  r.model = std::string(kMaxModel - 1, 'm') + "\u00e9\u00e9";  // the first é straddles the limit
  std::byte slot[kSlotPayload];
  encode(r, slot);
  auto back = decode(slot);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back->model, std::string(kMaxModel - 1, 'm'));
}

TEST(UsageRecord, JsonRoundTrip) {
  const Record r = sample(9);
  EXPECT_EQ(from_json(nlohmann::json::parse(to_json(r).dump())), r);
  Record empty_opts{"y", 1, 2, std::nullopt, std::nullopt, true, 502, "upstream_error",
                    std::nullopt, std::nullopt, std::nullopt, false, 1, 2, std::nullopt};
  EXPECT_EQ(from_json(nlohmann::json::parse(to_json(empty_opts).dump())), empty_opts);
}

TEST(UsageCopyText, OneLinePerRecordWithEscapesNullsAndShortestDoubles) {
  Record hostile{"r\\1", 1, 2, std::nullopt, std::string("a\tb\nc\rd\\e \"f\" ü"), true, 200, "ok",
                 7, std::nullopt, 7, true, -5, 0.1, std::nullopt};
  Record spoken = sample(2);
  spoken.endpoint = Endpoint::audio;
  spoken.units = 1.5;
  spoken.unit = Unit::seconds;
  spoken.cost = 150'000'000;  // $0.00015
  spoken.cost_source = CostSource::upstream;
  spoken.upstream_cost = 150'000'000;
  spoken.price_version = 4;
  const std::vector<Record> batch{sample(1), hostile, spoken};
  std::string text = "kept|";
  append_copy_text(text, batch);
  EXPECT_EQ(text,
            "kept|req-1\t7\t3\t5b0d8d4e-1f6a-4a57-9a55-0a8e7b7f0c11\tllama-3.3-70b\tf\t200\tok\t12\t34\t46\tf\t"
            "2025-11-24 16:00:00.000001+00\t12.5\t3.25\tchat\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\n"
            "r\\\\1\t1\t2\t\\N\ta\\tb\\nc\\rd\\\\e \"f\" ü\tt\t200\tok\t7\t\\N\t7\tt\t1969-12-31 23:59:59.999995+00\t0.1\t\\N\tchat\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\n"
            "req-2\t7\t3\t5b0d8d4e-1f6a-4a57-9a55-0a8e7b7f0c11\tllama-3.3-70b\tt\t200\tok\t12\t34\t46\tf\t"
            "2025-11-24 16:00:00.000002+00\t12.5\t3.25\taudio\t1.5\tseconds\t0.00015\tupstream\t0.00015\t4\n");
}

TEST(UsageRing, PushPeekReleaseInOrderAndFullWhenUnreleased) {
  TempDir dir;
  Ring ring(dir.file("q"), 8);
  EXPECT_EQ(ring.capacity(), 8u);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(ring.try_push(sample(i)));
  EXPECT_FALSE(ring.try_push(sample(8)));  // full
  std::vector<Record> out;
  EXPECT_EQ(ring.peek(out, 5), 5u);
  EXPECT_FALSE(ring.try_push(sample(8)));  // peeked is not released
  ring.release(5);
  for (int i = 8; i < 13; ++i) ASSERT_TRUE(ring.try_push(sample(i)));
  EXPECT_EQ(ring.peek(out, 100), 8u);
  ASSERT_EQ(out.size(), 13u);
  for (int i = 0; i < 13; ++i) EXPECT_EQ(out[i].request_id, "req-" + std::to_string(i));
}

TEST(UsageRing, RewindReturnsWhatWasNotReleased) {
  TempDir dir;
  Ring ring(dir.file("q"), 8);
  for (int i = 0; i < 3; ++i) ring.try_push(sample(i));
  std::vector<Record> out;
  ring.peek(out, 10);
  ring.rewind();
  out.clear();
  EXPECT_EQ(ring.peek(out, 10), 3u);
  EXPECT_EQ(out[0].request_id, "req-0");
}

TEST(UsageRing, ConcurrentProducersLoseAndDoubleNothing) {
  TempDir dir;
  Ring ring(dir.file("q"), 1024);
  constexpr int kThreads = 4, kEach = 50'000;
  std::atomic<int> done{0};
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t)
    producers.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i)
        while (!ring.try_push(sample(static_cast<std::uint64_t>(t) * kEach + i))) std::this_thread::yield();
      done.fetch_add(1);
    });
  std::set<std::string> seen;
  std::vector<Record> out;
  while (seen.size() < static_cast<std::size_t>(kThreads * kEach)) {
    out.clear();
    const auto n = ring.peek(out, 512);
    for (auto& r : out) ASSERT_TRUE(seen.insert(r.request_id).second) << "twice: " << r.request_id;
    ring.release(n);
    if (n == 0) std::this_thread::yield();
  }
  for (auto& p : producers) p.join();
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kThreads * kEach));
  EXPECT_EQ(ring.depth(), 0u);
}

TEST(UsageRing, ReopeningRecoversPublishedButUnreleasedRecords) {
  TempDir dir;
  {
    Ring ring(dir.file("q"), 16);
    for (int i = 0; i < 10; ++i) ring.try_push(sample(i));
    std::vector<Record> out;
    ring.peek(out, 4);
    ring.release(4);  // 0..3 are safe elsewhere
    ring.peek(out, 3);  // 4..6 read but not released: the process "dies" here
  }
  Ring again(dir.file("q"), 16);
  ASSERT_EQ(again.recovered().size(), 6u);
  EXPECT_EQ(again.recovered().front().request_id, "req-4");
  EXPECT_EQ(again.recovered().back().request_id, "req-9");
  EXPECT_TRUE(again.try_push(sample(100)));  // producers need not wait for the recovery
  again.release_recovered();
  EXPECT_TRUE(again.recovered().empty());
  EXPECT_EQ(again.depth(), 1u);
  std::vector<Record> out;
  ASSERT_EQ(again.peek(out, 10), 1u);
  EXPECT_EQ(out[0].request_id, "req-100");
  again.release(1);
  for (int i = 0; i < 16; ++i) EXPECT_TRUE(again.try_push(sample(200 + i))) << i;  // every slot free again
}

TEST(UsageRing, ASecondProcessCannotOpenTheSameFile) {
  TempDir dir;
  Ring ring(dir.file("q"), 8);
  // flock locks are per open file description, so a second open in this process conflicts like
  // another process would.
  EXPECT_THROW(Ring(dir.file("q"), 8), std::runtime_error);
}

TEST(UsageJournal, AppendsReplaysOldestFirstAndDeletesAfterCommit) {
  TempDir dir;
  Journal j(dir.file("journal"), /*rotate_bytes=*/1000);
  std::vector<Record> a{sample(1), sample(2), sample(3)}, b{sample(4), sample(5)};
  j.append(a);
  j.append(b);
  EXPECT_TRUE(j.pending());
  EXPECT_GT(j.bytes(), 0u);
  std::vector<std::string> got;
  while (j.pending())
    j.replay_oldest(2, [&](std::span<const Record> batch) {
      EXPECT_LE(batch.size(), 2u);
      for (auto& r : batch) got.push_back(r.request_id);
    });
  EXPECT_EQ(got, (std::vector<std::string>{"req-1", "req-2", "req-3", "req-4", "req-5"}));
  EXPECT_EQ(j.bytes(), 0u);
}

TEST(UsageJournal, AFailedCommitKeepsTheFileAndAReopenedJournalFindsIt) {
  TempDir dir;
  {
    Journal j(dir.file("journal"));
    std::vector<Record> a{sample(1), sample(2)};
    j.append(a);
    EXPECT_THROW(j.replay_oldest(10, [](std::span<const Record>) { throw std::runtime_error("postgres down"); }),
                 std::runtime_error);
    EXPECT_TRUE(j.pending());
  }
  Journal reopened(dir.file("journal"));
  ASSERT_TRUE(reopened.pending());
  std::size_t n = reopened.replay_oldest(10, [](std::span<const Record>) {});
  EXPECT_EQ(n, 2u);
  EXPECT_FALSE(reopened.pending());
}

TEST(UsageJournal, ATornLastLineIsSkipped) {
  TempDir dir;
  Journal j(dir.file("journal"));
  std::vector<Record> a{sample(1)};
  j.append(a);
  for (const auto& e : fs::directory_iterator(dir.file("journal"))) {
    std::ofstream(e.path(), std::ios::app) << R"({"request_id":"req-2","api_k)";
  }
  std::vector<std::string> got;
  j.replay_oldest(10, [&](std::span<const Record> b) {
    for (auto& r : b) got.push_back(r.request_id);
  });
  EXPECT_EQ(got, std::vector<std::string>{"req-1"});
}

TEST(UsageJournal, RecordsWithInvalidUtf8AreJournalledNotRefused) {
  TempDir dir;
  Journal j(dir.file("journal"));
  Record r = sample(1);
  r.model = "bad \xff";
  std::vector<Record> a{r};
  EXPECT_NO_THROW(j.append(a));
  EXPECT_NO_THROW(j.dead_letter(r, "invalid byte sequence"));
  std::size_t n = j.replay_oldest(10, [](std::span<const Record>) {});
  EXPECT_EQ(n, 1u);
}

TEST(UsageJournal, DeadLettersAreKeptWithTheirError) {
  TempDir dir;
  Journal j(dir.file("journal"));
  j.dead_letter(sample(1), "violates foreign key");
  std::ifstream in(dir.file("journal") + "/dead-letter.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  auto d = nlohmann::json::parse(line);
  EXPECT_EQ(d["record"]["request_id"], "req-1");
  EXPECT_EQ(d["error"], "violates foreign key");
  EXPECT_FALSE(j.pending());
}
