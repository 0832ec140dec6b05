// The usage pipeline against a real Postgres: exactly one row per record through batching, retries,
// replays, poison records, SIGKILL and SIGTERM. In-process where a test needs to look inside, in a
// process of its own (lagoon_usage_driver) where it must be killed.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "lagoon/config/config.hpp"
#include "lagoon/db/connection.hpp"
#include "lagoon/db/pool.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/usage/journal.hpp"
#include "lagoon/usage/pipeline.hpp"
#include "lagoon/usage/ring.hpp"
#include "lagoon/usage/writer.hpp"
#include "support/environment.hpp"
#include "support/usage_support.hpp"

using namespace lagoon;
using namespace lagoon::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

class Usage : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(lagoon_cli({"migrate"}, env).code, 0);
    auto [kid, key] = create_key(env);
    key_id = kid;
    user_id = std::stoll(db.scalar("SELECT user_id FROM api_keys WHERE id = " + std::to_string(key_id)));
  }
  std::int64_t rows() { return std::stoll(db.scalar("SELECT count(*) FROM usage_records")); }
  usage::Record rec(std::uint64_t i) { return sample_record("r", i, key_id, user_id); }

  TestDatabase db;
  Env env = lagoon_env(db);
  TempDir dir;
  std::int64_t key_id = 0, user_id = 0;
};

}  // namespace

TEST_F(Usage, WritingABatchTwiceStoresItOnceAndMovesTheAggregatesOnce) {
  const std::string session =
      db.scalar("INSERT INTO sessions (api_key_id, user_id, model, expires_at) VALUES (" + std::to_string(key_id) +
                ", " + std::to_string(user_id) + ", 'm', now() + interval '1 hour') RETURNING id");
  std::vector<usage::Record> batch;
  for (int i = 0; i < 3; ++i) {
    batch.push_back(rec(i));
    batch.back().session_id = session;
  }
  auto cfg = usage_config(db, dir.path().string());
  auto conn = db::connect(cfg);
  auto first = usage::write_batch(*conn, batch);
  EXPECT_EQ(first.inserted, 3u);
  auto again = usage::write_batch(*conn, batch, usage::WriteMethod::insert);
  EXPECT_EQ(again.inserted, 0u);
  EXPECT_EQ(again.duplicates, 3u);
  EXPECT_EQ(rows(), 3);
  EXPECT_EQ(db.scalar("SELECT request_count FROM sessions WHERE id = '" + session + "'"), "3");
  EXPECT_EQ(db.scalar("SELECT last_used_at = timestamptz 'epoch' + " + std::to_string(batch[2].started_at_us) +
                      " * interval '1 microsecond' FROM api_keys WHERE id = " + std::to_string(key_id)),
            "t");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM usage_records WHERE model = 'llama-3.3-70b' AND total_tokens = 46 "
                      "AND ttfb_ms = 3.25 AND outcome = 'ok' AND stream IS NOT NULL"),
            "3");
}

TEST_F(Usage, ABatchPartlyStoredAlreadyAddsOnlyTheNewRowsAndTheirAggregates) {
  // The first write takes the direct COPY; the second finds a stored request id, falls back to the
  // staging merge and must move the aggregates by the new records only.
  const std::string session =
      db.scalar("INSERT INTO sessions (api_key_id, user_id, model, expires_at) VALUES (" + std::to_string(key_id) +
                ", " + std::to_string(user_id) + ", 'm', now() + interval '1 hour') RETURNING id");
  auto cfg = usage_config(db, dir.path().string());
  auto conn = db::connect(cfg);
  std::vector<usage::Record> batch;
  for (int i = 0; i < 6; ++i) {
    batch.push_back(rec(i));
    batch.back().session_id = session;
    batch.back().started_at_us = 1'764'000'000'000'000 + i;
  }
  ASSERT_EQ(usage::write_batch(*conn, std::span(batch).first(2)).inserted, 2u);
  EXPECT_EQ(db.scalar("SELECT request_count FROM sessions WHERE id = '" + session + "'"), "2");
  std::swap(batch[1], batch[5]);  // the stored record now sits among new ones, the newest last
  const auto r = usage::write_batch(*conn, std::span(batch).subspan(1));
  EXPECT_EQ(r.inserted, 4u);
  EXPECT_EQ(r.duplicates, 1u);
  EXPECT_EQ(rows(), 6);
  EXPECT_EQ(db.scalar("SELECT request_count FROM sessions WHERE id = '" + session + "'"), "6");
  EXPECT_EQ(db.scalar("SELECT last_used_at = timestamptz '2025-11-24 16:00:00.000005+00' FROM api_keys WHERE id = " +
                      std::to_string(key_id)),
            "t");
  EXPECT_EQ(db.scalar("SELECT last_used_at = timestamptz '2025-11-24 16:00:00.000005+00' FROM sessions WHERE id = '" +
                      session + "'"),
            "t");
  EXPECT_EQ(db.scalar("SELECT count(*) FROM usage_records WHERE started_at = timestamptz 'epoch' + (" +
                      std::to_string(1'764'000'000'000'003) + " * interval '1 microsecond')"),
            "1");
}

TEST_F(Usage, CopyAndInsertStoreHostileStringsAndEdgeNumbersAlike) {
  // Every character COPY's text format treats specially, in the one client-supplied string (model),
  // plus the number forms the encoder has to get right.
  auto cfg = usage_config(db, dir.path().string());
  auto conn = db::connect(cfg);
  std::vector<usage::Record> batch;
  const std::vector<std::string> models = {"tab\there", "line\nbreak", "cr\rhere", "back\\slash\\N", "\\N",
                                           "quote'\"", "ünïcödé 🦜", ""};
  for (std::size_t i = 0; i < models.size(); ++i) {
    auto r = rec(i);
    r.model = models[i];
    r.duration_ms = i == 0 ? 1e-7 : i == 1 ? 123456789.125 : 0.1 * static_cast<double>(i);
    r.ttfb_ms = i % 2 ? std::optional<double>() : std::optional<double>(1.0 / 3.0);
    r.prompt_tokens = i == 2 ? std::optional<std::int32_t>(2147483647) : std::nullopt;
    batch.push_back(r);
  }
  ASSERT_EQ(usage::write_batch(*conn, batch).inserted, batch.size());
  for (auto& r : batch) r.request_id += "-insert";
  ASSERT_EQ(usage::write_batch(*conn, batch, usage::WriteMethod::insert).inserted, batch.size());
  for (std::size_t i = 0; i < models.size(); ++i) {
    const std::string cols = "model, duration_ms::text, coalesce(ttfb_ms::text, 'null'), coalesce(prompt_tokens::text, 'null')";
    const auto a = db.scalar("SELECT concat_ws('|', " + cols + ") FROM usage_records WHERE request_id = '" +
                             batch[i].request_id.substr(0, batch[i].request_id.size() - 7) + "'");
    const auto b = db.scalar("SELECT concat_ws('|', " + cols + ") FROM usage_records WHERE request_id = '" +
                             batch[i].request_id + "'");
    EXPECT_EQ(a, b) << i;
    EXPECT_EQ(a.substr(0, models[i].size()), models[i]) << i;
    char exact[40];
    std::snprintf(exact, sizeof exact, "%.17g", batch[i].duration_ms);
    EXPECT_EQ(db.scalar("SELECT duration_ms = '" + std::string(exact) + "'::float8 FROM usage_records WHERE request_id = '" +
                        batch[i].request_id + "'"),
              "t")
        << i;
  }
}

TEST_F(Usage, UnitsReachPostgresByEveryWritePathAndRowsWithoutThemHaveNulls) {
  auto cfg = usage_config(db, dir.path().string());
  auto conn = db::connect(cfg);
  const std::vector<std::pair<usage::Unit, double>> units = {{usage::Unit::images, 4},
                                                              {usage::Unit::characters, 1200},
                                                              {usage::Unit::seconds, 12.345678901234567},
                                                              {usage::Unit::bytes, 3e9},
                                                              {usage::Unit::none, 0}};
  std::vector<usage::Record> batch;
  for (std::size_t i = 0; i < units.size(); ++i) {
    auto r = rec(i);
    r.unit = units[i].first;
    if (r.unit != usage::Unit::none) r.units = units[i].second;
    batch.push_back(r);
  }
  // The direct COPY; then COPY into the staging table (the batch repeats a stored record); then INSERT.
  ASSERT_EQ(usage::write_batch(*conn, batch).inserted, batch.size());
  auto staged = batch;
  for (auto& r : staged) r.request_id += "-staged";
  staged.push_back(batch[0]);
  ASSERT_EQ(usage::write_batch(*conn, staged).inserted, batch.size());
  auto inserted = batch;
  for (auto& r : inserted) r.request_id += "-insert";
  ASSERT_EQ(usage::write_batch(*conn, inserted, usage::WriteMethod::insert).inserted, batch.size());

  for (const std::string suffix : {"", "-staged", "-insert"})
    for (std::size_t i = 0; i < units.size(); ++i) {
      const std::string where = " FROM usage_records WHERE request_id = '" + batch[i].request_id + suffix + "'";
      if (units[i].first == usage::Unit::none) {
        EXPECT_EQ(db.scalar("SELECT units IS NULL AND unit IS NULL" + where), "t") << suffix;
        continue;
      }
      char exact[40];
      std::snprintf(exact, sizeof exact, "%.17g", units[i].second);
      EXPECT_EQ(db.scalar("SELECT units = '" + std::string(exact) + "'::float8" + where), "t") << i << suffix;
      EXPECT_EQ(db.scalar("SELECT unit" + where), usage::unit_name(units[i].first)) << suffix;
    }
}

TEST_F(Usage, PostgresRefusesAnUnknownUnitAndUnitsWithoutTheirUnitAsData) {
  // Whoever else writes the ledger: a row that says 3 of nothing, or 3 furlongs, bills nothing sensible.
  auto cfg = usage_config(db, dir.path().string());
  auto conn = db::connect(cfg);
  auto unitless = rec(1);
  unitless.units = 3;  // and unit none
  auto no_count = rec(2);
  no_count.unit = usage::Unit::seconds;  // and no units
  for (const auto& r : {unitless, no_count}) {
    const std::vector<usage::Record> one{r};
    for (const auto method : {usage::WriteMethod::copy, usage::WriteMethod::insert}) {
      try {
        usage::write_batch(*conn, one, method);
        ADD_FAILURE() << r.request_id << " was stored";
      } catch (...) {
        EXPECT_EQ(usage::classify(std::current_exception()), usage::Failure::data) << r.request_id;
      }
    }
  }
  pqxx::work tx(*conn);
  EXPECT_THROW(tx.exec("INSERT INTO usage_records (request_id, api_key_id, user_id, stream, status_code, outcome,"
                       " started_at, duration_ms, units, unit) VALUES ('furlongs', 1, 1, false, 200, 'ok', now(), 1,"
                       " 3, 'furlongs')"),
               pqxx::check_violation);
  EXPECT_EQ(rows(), 0);
}

TEST_F(Usage, APoisonRecordIsSetAsideAndTheRestIsWritten) {
  auto cfg = usage_config(db, dir.path().string());
  metrics::Registry registry;
  db::Pool pool(cfg, registry);
  {
    usage::Pipeline p(cfg, pool, registry);
    p.start();
    for (int i = 0; i < 1000; ++i) {
      auto r = rec(i);
      if (i == 17) r.model = "bad \xff utf-8";     // invalid byte sequence for UTF8
      if (i == 600) r.session_id = "not-a-uuid";  // invalid input syntax for type uuid
      ASSERT_TRUE(p.push(r));
    }
    wait_until([&] { return rows() == 998; }, 20s);
    p.stop(5s);
  }
  EXPECT_EQ(rows(), 998);
  EXPECT_EQ(registry.counter("lagoon_usage_dead_lettered_total", "").value(), 2u);
  std::ifstream in(dir.path() / "journal" / "dead-letter.jsonl");
  std::string line;
  std::vector<std::string> ids;
  while (std::getline(in, line)) ids.push_back(nlohmann::json::parse(line)["record"]["request_id"]);
  EXPECT_EQ(ids, (std::vector<std::string>{"r-17", "r-600"}));
}

TEST_F(Usage, AMillionRecordsFromFourThreadsLandExactlyOnce) {
  auto cfg = usage_config(db, dir.path().string(), {{"LAGOON_USAGE_QUEUE_CAPACITY", "131072"}});
  metrics::Registry registry;
  db::Pool pool(cfg, registry);
#if defined(__SANITIZE_ADDRESS__)
  // A quarter under AddressSanitizer: the million took 82 s of the test's 120 s there, alone on the
  // machine, and `make test` runs two tests at a time.
  constexpr std::uint64_t kRecords = 250'000;
#else
  constexpr std::uint64_t kRecords = 1'000'000;
#endif
  const auto t0 = Clock::now();
  {
    usage::Pipeline p(cfg, pool, registry);
    p.start();
    std::vector<std::thread> producers;
    for (int t = 0; t < 4; ++t)
      producers.emplace_back([&, t] {
        for (std::uint64_t i = t; i < kRecords; i += 4) {
          while (p.queued() * 4 >= p.capacity() * 3) std::this_thread::sleep_for(100us);
          if (!p.push(rec(i))) ADD_FAILURE() << "push refused";
        }
      });
    for (auto& t : producers) t.join();
    wait_until([&] { return p.idle(); }, 120s);
    p.stop(10s);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_EQ(rows(), static_cast<std::int64_t>(kRecords));
  EXPECT_EQ(rows_numbered_below(db, "r", static_cast<std::int64_t>(kRecords)), rows());
  EXPECT_EQ(registry.counter("lagoon_usage_dropped_total", "").value(), 0u);
  EXPECT_EQ(registry.counter("lagoon_usage_flushed_total", "").value(), kRecords);
  std::cout << "[ figures  ] " << kRecords << " records pushed and flushed in " << seconds << " s: "
            << static_cast<long>(kRecords / seconds) << " records/s end to end\n";
}

TEST_F(Usage, StartUpReplaysTheQueueAPreviousProcessLeftAndTheJournal) {
  {
    usage::Ring ring((dir.path() / "queue.ring").string(), 1024);
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(ring.try_push(rec(i)));
    // destroyed without release(): as if the process had died
  }
  {
    usage::Journal journal((dir.path() / "journal").string());
    std::vector<usage::Record> spilled;
    for (int i = 100; i < 150; ++i) spilled.push_back(rec(i));
    spilled.push_back(rec(5));  // also still in the ring: must not be doubled
    journal.append(spilled);
  }
  auto cfg = usage_config(db, dir.path().string());
  metrics::Registry registry;
  db::Pool pool(cfg, registry);
  {
    usage::Pipeline p(cfg, pool, registry);
    p.start();
    wait_until([&] { return rows() == 150 && p.idle(); }, 20s);
    p.stop(5s);
  }
  EXPECT_EQ(rows(), 150);
  EXPECT_EQ(registry.counter("lagoon_usage_recovered_total", "").value(), 100u);
  EXPECT_EQ(registry.counter("lagoon_usage_replayed_total", "").value(), 51u);
  EXPECT_EQ(registry.counter("lagoon_usage_duplicates_total", "").value(), 1u);
  EXPECT_FALSE(usage::Journal((dir.path() / "journal").string()).pending());
}

TEST_F(Usage, SigkillDuringFlushingLosesNoAcknowledgedRecordAndDoublesNone) {
  const std::string counter = (dir.path() / "acked").string();
  Env e = env;
  e["LAGOON_USAGE_DIR"] = (dir.path() / "usage").string();
  e["LAGOON_USAGE_BATCH_SIZE"] = "500";
  {
    Process producer({LAGOON_USAGE_DRIVER, "produce", "--records", "2000000", "--key-id", std::to_string(key_id),
                      "--user-id", std::to_string(user_id), "--counter", counter},
                     e, (dir.path() / "produce.log").string());
    // Kill it while it pushes and flushes.
    wait_until([&] { return rows() > 20'000; }, 30s);
    producer.signal(SIGKILL);
    ASSERT_TRUE(producer.wait(5s));
  }
  const auto acked = read_counter(counter);
  const auto before_restart = rows();
  ASSERT_GT(acked, 0u);
  EXPECT_LT(before_restart, static_cast<std::int64_t>(acked)) << "the kill should land with records in flight";
  auto drained = run({LAGOON_USAGE_DRIVER, "drain"}, e, 90s);
  ASSERT_EQ(drained.code, 0) << drained.err << drained.out;
  const auto after = rows();
  // The kill may land between a push and the counter update: then one more record than counted exists.
  EXPECT_TRUE(after == static_cast<std::int64_t>(acked) || after == static_cast<std::int64_t>(acked) + 1)
      << "rows " << after << ", acknowledged " << acked;
  // Exactly the first `after` records, none missing in between and none twice.
  EXPECT_EQ(rows_numbered_below(db, "rec", after), after);
}

TEST_F(Usage, SigtermFlushesWhatIsQueued) {
  Env e = env;
  e["LAGOON_USAGE_DIR"] = (dir.path() / "usage").string();
  e["LAGOON_USAGE_FLUSH_INTERVAL_MS"] = "60000";  // nothing would be written for a minute
  e["LAGOON_USAGE_BATCH_SIZE"] = "100000";
  Process producer({LAGOON_USAGE_DRIVER, "produce", "--records", "5000", "--key-id", std::to_string(key_id),
                    "--user-id", std::to_string(user_id)},
                   e, (dir.path() / "produce.log").string());
  wait_until([&] { return producer.output().find("produced") != std::string::npos; }, 20s);
  EXPECT_EQ(rows(), 0);
  producer.signal(SIGTERM);
  EXPECT_EQ(producer.wait(20s), 0) << producer.output();
  EXPECT_EQ(rows(), 5000);
}

TEST_F(Usage, SigtermWithPostgresAwayJournalsAndTheNextStartReplays) {
  Env away = env;
  away["LAGOON_DATABASE_URL"] = "postgresql://postgres@127.0.0.1:" + std::to_string(free_port()) + "/nowhere";
  away["LAGOON_USAGE_DIR"] = (dir.path() / "usage").string();
  Process producer({LAGOON_USAGE_DRIVER, "produce", "--records", "3000", "--key-id", std::to_string(key_id),
                    "--user-id", std::to_string(user_id)},
                   away, (dir.path() / "produce.log").string());
  wait_until([&] { return producer.output().find("produced") != std::string::npos; }, 20s);
  producer.signal(SIGTERM);
  EXPECT_EQ(producer.wait(30s), 0) << producer.output();
  std::size_t spill_files = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir.path() / "usage" / "journal"))
    spill_files += f.path().filename().string().rfind("spill-", 0) == 0;
  EXPECT_GT(spill_files, 0u);
  Env back = env;
  back["LAGOON_USAGE_DIR"] = (dir.path() / "usage").string();
  auto drained = run({LAGOON_USAGE_DRIVER, "drain"}, back, 60s);
  ASSERT_EQ(drained.code, 0) << drained.err << drained.out;
  EXPECT_EQ(rows(), 3000);
  EXPECT_EQ(rows_numbered_below(db, "rec", 3000), 3000);
}
