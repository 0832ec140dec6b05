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
  // A write refused by a replica: the server is not (any more) the primary.
  bool is_readonly() const noexcept { return is_error() && str.rfind("READONLY", 0) == 0; }
  // A ROLE reply from the primary.
  bool says_primary() const noexcept { return type == Type::array && !elements.empty() && elements[0].str == "master"; }
  static Reply from(const redisReply* r);
};

// A command's arguments in the (argc, argv, lengths) form hiredis's *Argv functions take; binary-safe.
// Borrows from `args`, which must outlive it.
struct ArgvView {
  explicit ArgvView(const std::vector<std::string>& args) {
    argv.reserve(args.size());
    lens.reserve(args.size());
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
  }
  int argc() const noexcept { return static_cast<int>(argv.size()); }
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
};

}  // namespace lagoon::redis
