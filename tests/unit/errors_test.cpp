#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "lagoon/http/errors.hpp"
#include "lagoon/http/request_id.hpp"

using lagoon::http::ErrorKind;

TEST(Errors, EveryKindHasTheOpenAiShape) {
  struct Case {
    ErrorKind kind;
    unsigned status;
    std::string code;
  } cases[] = {
      {ErrorKind::bad_request, 400, "bad_request"},
      {ErrorKind::invalid_api_key, 401, "invalid_api_key"},
      {ErrorKind::not_found, 404, "not_found"},
      {ErrorKind::method_not_allowed, 405, "method_not_allowed"},
      {ErrorKind::request_timeout, 408, "request_timeout"},
      {ErrorKind::payload_too_large, 413, "request_too_large"},
      {ErrorKind::uri_too_long, 414, "request_line_too_long"},
      {ErrorKind::headers_too_large, 431, "headers_too_large"},
      {ErrorKind::rate_limited, 429, "rate_limit_exceeded"},
      {ErrorKind::rate_limited_tokens, 429, "rate_limit_exceeded"},
      {ErrorKind::conflict, 409, "conflict"},
      {ErrorKind::internal_error, 500, "internal_error"},
      {ErrorKind::service_unavailable, 503, "service_unavailable"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(lagoon::http::spec(c.kind).status, c.status);
    auto body = nlohmann::json::parse(lagoon::http::error_body(c.kind, "why"));
    ASSERT_TRUE(body["error"].is_object());
    EXPECT_EQ(body["error"].size(), 4u);
    EXPECT_EQ(body["error"]["message"], "why");
    EXPECT_TRUE(body["error"]["type"].is_string());
    EXPECT_TRUE(body["error"]["param"].is_null());
    EXPECT_EQ(body["error"]["code"], c.code);
  }
}

TEST(Errors, MessagesAreEscapedAndInvalidUtf8Replaced) {
  auto body = lagoon::http::error_body(ErrorKind::bad_request, "quote \" newline \n bad \xff");
  auto j = nlohmann::json::parse(body);
  EXPECT_EQ(j["error"]["message"], "quote \" newline \n bad \xEF\xBF\xBD");
}

TEST(RequestId, SaneClientIdsAreKeptOthersReplaced) {
  EXPECT_EQ(lagoon::http::choose_request_id("abc-123_x.y:z"), "abc-123_x.y:z");
  for (std::string bad : {std::string(""), std::string("a b"), std::string("x\r\nSet-Cookie: y"), std::string(129, 'a')}) {
    auto id = lagoon::http::choose_request_id(bad);
    EXPECT_NE(id, bad);
    EXPECT_EQ(id.size(), 36u);
  }
}

TEST(RequestId, FreshIdsAreVersion4Uuids) {
  auto id = lagoon::http::new_request_id();
  ASSERT_EQ(id.size(), 36u);
  EXPECT_EQ(id[8], '-');
  EXPECT_EQ(id[14], '4');
  EXPECT_TRUE(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b');
  EXPECT_NE(id, lagoon::http::new_request_id());
}
