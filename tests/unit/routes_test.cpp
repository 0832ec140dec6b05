#include <gtest/gtest.h>

#include "lagoon/http/routes.hpp"

using lagoon::http::match_route;
using Kind = lagoon::http::RouteMatch::Kind;

TEST(Routes, KnownRoutesMatchIgnoringTheQuery) {
  EXPECT_EQ(match_route("GET", "/healthz").kind, Kind::found);
  EXPECT_EQ(match_route("GET", "/readyz?verbose=1").route, lagoon::http::Route::readyz);
  EXPECT_EQ(match_route("GET", "/metrics").route, lagoon::http::Route::metrics);
}

TEST(Routes, WrongMethodIs405WithAllow) {
  auto m = match_route("POST", "/healthz");
  EXPECT_EQ(m.kind, Kind::method_not_allowed);
  EXPECT_EQ(m.allow, "GET");
  EXPECT_EQ(m.label, "/healthz");
}

TEST(Routes, UnknownPathsAre404WithABoundedLabel) {
  for (auto t : {"/", "/healthz/", "/HEALTHZ", "/nope", "*", "http://x/healthz"}) {
    auto m = match_route("GET", t);
    EXPECT_EQ(m.kind, Kind::not_found) << t;
    EXPECT_EQ(m.label, "unmatched");
  }
}

TEST(Routes, PathOfDropsTheQuery) {
  EXPECT_EQ(lagoon::http::path_of("/a?key=secret"), "/a");
  EXPECT_EQ(lagoon::http::path_of("/a"), "/a");
}

TEST(Routes, RequestLineLength) {
  EXPECT_FALSE(lagoon::http::request_line_too_long("GET", std::string(100, 'a'), 8192));
  EXPECT_TRUE(lagoon::http::request_line_too_long("GET", std::string(8190, 'a'), 8192));
}

TEST(Routes, EverythingUnderAdminV1GoesToTheAdminApi) {
  for (auto t : {"/admin/v1", "/admin/v1/users", "/admin/v1/keys/7?x=1", "/admin/v1/keys/7/usage"})
    for (auto method : {"GET", "POST", "PATCH", "DELETE", "PUT"}) {
      auto m = match_route(method, t);
      EXPECT_EQ(m.kind, Kind::found) << method << " " << t;
      EXPECT_EQ(m.route, lagoon::http::Route::admin);
      EXPECT_EQ(m.label, "/admin/v1");
    }
  EXPECT_EQ(match_route("GET", "/admin/v10").kind, Kind::not_found);
  EXPECT_EQ(match_route("GET", "/admin").kind, Kind::not_found);
}

TEST(Framing, RawHeaderRefusesFoldingAndLeadingWhitespaceButNotTheBody) {
  using lagoon::http::raw_header_problem;
  EXPECT_TRUE(raw_header_problem("POST / HTTP/1.1\r\nHost: a\r\nX: b\r\n\r\n{\"a\":\n 1}").empty());
  EXPECT_TRUE(raw_header_problem("POST / HTTP/1.1\r\nHost: a\r\n").empty());  // incomplete so far, fine so far
  EXPECT_FALSE(raw_header_problem("POST / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n").empty());
  EXPECT_FALSE(raw_header_problem("POST / HTTP/1.1\r\nX: b\r\n\tc\r\n\r\n").empty());
  EXPECT_FALSE(raw_header_problem("POST / HTTP/1.1\r\n Host: a\r\n\r\n").empty());
  EXPECT_FALSE(raw_header_problem("POST / HTTP/1.1\r\nHost: a\r\n ").empty());  // the fold arrives first
}

namespace {
std::string_view cl_problem(unsigned version, std::size_t hosts, std::size_t cls, std::string_view cl) {
  return lagoon::http::field_problem({version, hosts, cls, cl, 0, {}});
}
std::string_view te_problem(std::size_t tes, std::string_view te, std::size_t cls = 0) {
  return lagoon::http::field_problem({11, 1, cls, cls ? "5" : "", tes, te});
}
}  // namespace

TEST(Framing, HostAndContentLengthMustBeSingleAndPlain) {
  EXPECT_TRUE(cl_problem(11, 1, 0, "").empty());
  EXPECT_TRUE(cl_problem(11, 1, 1, "42").empty());
  EXPECT_TRUE(cl_problem(10, 0, 1, "0").empty());
  EXPECT_FALSE(cl_problem(11, 0, 0, "").empty());
  EXPECT_FALSE(cl_problem(10, 2, 0, "").empty());
  EXPECT_FALSE(cl_problem(11, 1, 2, "5").empty());
  EXPECT_FALSE(cl_problem(11, 1, 1, "5, 5").empty());
  EXPECT_FALSE(cl_problem(11, 1, 1, "+5").empty());
  EXPECT_FALSE(cl_problem(11, 1, 1, "").empty());
}

// Beast 1.81 frames every one of the refused values as "no body", leaving the body to be read as the
// next request (request smuggling).
TEST(Framing, TransferEncodingMayOnlyBeOneChunkedWithoutContentLength) {
  EXPECT_TRUE(te_problem(1, "chunked").empty());
  EXPECT_TRUE(te_problem(1, "Chunked").empty());
  EXPECT_TRUE(te_problem(1, "CHUNKED ").empty());
  for (std::string_view bad : {"gzip", "chunked, identity", "gzip, chunked", "\"chunked\"", "identity", "",
                               "chunkedx", "chunk", "chunked;q=1", "chunked,"})
    EXPECT_FALSE(te_problem(1, bad).empty()) << bad;
  EXPECT_FALSE(te_problem(2, "chunked").empty());  // two fields
  EXPECT_FALSE(te_problem(1, "chunked", 1).empty());  // both framings
}
