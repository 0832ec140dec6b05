// Reply: an owned copy of a hiredis reply, so it can outlive hiredis's callback and cross threads.
// Value type; thread-compatible.
#pragma once

#include <string>
#include <vector>

struct redisReply;

namespace lagoon::redis {

struct Reply {
  enum class Type { nil, string, integer, array, status, error };
  Type type = Type::nil;
  std::string str;  // string, status and error replies
  long long integer = 0;
  std::vector<Reply> elements;

  bool is_error() const noexcept { return type == Type::error; }
  static Reply from(const redisReply* r);
};

}  // namespace lagoon::redis
