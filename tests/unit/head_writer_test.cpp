// http::HeadWriter: the message heads the transport and the upstream client write by hand.
#include <gtest/gtest.h>

#include <string>

#include "lagoon/http/head.hpp"

using lagoon::http::Headers;
using lagoon::http::HeadWriter;

TEST(HeadWriter, WritesAStatusLineFieldsAndTheBlankLineReusingItsBuffer) {
  std::string buffer = "left over from the last message";
  HeadWriter w(buffer);
  w.status_line(200, "OK");
  EXPECT_TRUE(w.field("Content-Type", "application/json"));
  w.field("Content-Length", std::uint64_t{380});
  EXPECT_EQ(w.finish(), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 380\r\n\r\n");
  HeadWriter again(buffer);
  again.request_line("POST", "/api/v1", "/chat/completions");
  EXPECT_EQ(again.finish(), "POST /api/v1/chat/completions HTTP/1.1\r\n\r\n");
}

TEST(HeadWriter, NeverWritesAFieldThatCouldSplitTheHead) {
  std::string buffer;
  HeadWriter w(buffer);
  w.status_line(200, "OK");
  EXPECT_FALSE(w.field("X-A", "one\r\nSet-Cookie: evil=1"));
  EXPECT_FALSE(w.field("X-B", std::string("nul\0byte", 8)));
  EXPECT_FALSE(w.field("X-C", "bare\nnewline"));
  EXPECT_FALSE(w.field("Bad Name", "v"));
  EXPECT_FALSE(w.field("Bad:Name", "v"));
  EXPECT_FALSE(w.field("", "v"));
  EXPECT_TRUE(w.field("X-Ok!#$%&'*+-.^_`|~", "any visible text, even: colons"));
  EXPECT_EQ(w.finish(), "HTTP/1.1 200 OK\r\nX-Ok!#$%&'*+-.^_`|~: any visible text, even: colons\r\n\r\n");
}

TEST(HeadWriter, ALaterFieldOfTheSameNameReplacesAnEarlierOneAndSkipIsHonoured) {
  const Headers headers{{"X-Venice-Version", "1"}, {"content-length", "5"}, {"x-venice-version", "2"}, {"X-Other", "o"}};
  std::string buffer;
  HeadWriter w(buffer);
  w.status_line(404, "Not Found");
  w.fields(headers, [](std::string_view name) { return name == "content-length"; });
  EXPECT_EQ(w.finish(), "HTTP/1.1 404 Not Found\r\nx-venice-version: 2\r\nX-Other: o\r\n\r\n");
  EXPECT_TRUE(lagoon::http::has_header(headers, "x-other"));
  EXPECT_FALSE(lagoon::http::has_header(headers, "x-missing"));
  EXPECT_TRUE(lagoon::http::bodiless_status(204));
  EXPECT_TRUE(lagoon::http::bodiless_status(304));
  EXPECT_TRUE(lagoon::http::bodiless_status(101));
  EXPECT_FALSE(lagoon::http::bodiless_status(200));
}
