#include <gtest/gtest.h>

#include <thread>

#include "lagoon/metrics/registry.hpp"

using lagoon::metrics::Registry;

TEST(Metrics, CountersRenderWithHelpTypeAndLabels) {
  Registry r;
  r.counter("lagoon_x_total", "Things", {{"route", "/a"}, {"status", "200"}}).inc(3);
  const auto text = r.render();
  EXPECT_NE(text.find("# HELP lagoon_x_total Things\n# TYPE lagoon_x_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("lagoon_x_total{route=\"/a\",status=\"200\"} 3\n"), std::string::npos);
}

TEST(Metrics, SameNameAndLabelsIsTheSameSeries) {
  Registry r;
  auto& a = r.counter("c_total", "h", {{"k", "v"}});
  auto& b = r.counter("c_total", "h", {{"k", "v"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &r.counter("c_total", "h", {{"k", "w"}}));
}

TEST(Metrics, LabelValuesAreEscaped) {
  Registry r;
  r.gauge("g", "h", {{"k", "a\"b\\c\nd"}}).set(1.5);
  EXPECT_NE(r.render().find("g{k=\"a\\\"b\\\\c\\nd\"} 1.5\n"), std::string::npos);
}

TEST(Metrics, HistogramBucketsAreCumulative) {
  Registry r;
  auto& h = r.histogram("lat_seconds", "h", {0.1, 1});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  const auto text = r.render();
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"0.10000000000000001\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_count 3\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_sum 5.5499999999999998\n"), std::string::npos) << text;
}

TEST(Metrics, OneNameCannotHaveTwoTypes) {
  Registry r;
  r.counter("m", "h");
  EXPECT_THROW(r.gauge("m", "h"), std::logic_error);
}

TEST(Metrics, ConcurrentIncrementsAreAllCounted) {
  Registry r;
  auto& c = r.counter("n_total", "h");
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) c.inc();
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(c.value(), 400000u);
}
