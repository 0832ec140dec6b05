#include "lagoon/redis/sync.hpp"

#include <hiredis/hiredis.h>

#include "lagoon/redis/locator.hpp"

namespace lagoon::redis {

Reply Reply::from(const redisReply* r) {
  Reply out;
  if (!r) return out;
  switch (r->type) {
    case REDIS_REPLY_STRING: out.type = Type::string; break;
    case REDIS_REPLY_STATUS: out.type = Type::status; break;
    case REDIS_REPLY_ERROR: out.type = Type::error; break;
    case REDIS_REPLY_INTEGER: out.type = Type::integer; break;
    case REDIS_REPLY_ARRAY: out.type = Type::array; break;
    default: out.type = Type::nil; break;
  }
  if (r->str) out.str.assign(r->str, r->len);
  out.integer = r->integer;
  if (r->type == REDIS_REPLY_ARRAY) {
    out.elements.reserve(r->elements);
    for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(from(r->element[i]));
  }
  return out;
}

namespace {

timeval to_timeval(std::chrono::milliseconds d) {
  return timeval{static_cast<time_t>(d.count() / 1000), static_cast<suseconds_t>((d.count() % 1000) * 1000)};
}

}  // namespace

SyncConnection::SyncConnection(config::RedisEndpoint endpoint, std::chrono::milliseconds timeout)
    : endpoint_(std::move(endpoint)), timeout_(timeout) {}

SyncConnection::SyncConnection(const config::Config& cfg, std::chrono::milliseconds timeout)
    : endpoint_(config::parse_redis_url(cfg.redis_url)),
      sentinels_(cfg.redis_sentinels),
      master_name_(cfg.redis_master_name),
      sentinel_password_(cfg.redis_sentinel_password),
      timeout_(timeout) {}

SyncConnection::~SyncConnection() { reset(); }

void SyncConnection::reset() noexcept {
  if (ctx_) redisFree(ctx_);
  ctx_ = nullptr;
}

bool SyncConnection::connect() {
  if (!sentinels_.empty()) {
    auto where = Locator::discover(sentinels_, master_name_, sentinel_password_, error_);
    if (!where) return false;
    endpoint_.host = where->host;
    endpoint_.port = where->port;
  }
  const timeval tv = to_timeval(timeout_);
  ctx_ = redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port, tv);
  if (!ctx_ || ctx_->err || redisSetTimeout(ctx_, tv) != REDIS_OK) {
    error_ = ctx_ ? std::string("cannot connect to Redis: ") + ctx_->errstr : "cannot allocate a Redis context";
    reset();
    return false;
  }
  auto setup = [&](std::vector<std::string> args) {
    auto reply = command(args);
    if (!reply) return false;
    if (reply->is_error()) {
      error_ = "Redis refused " + args[0] + ": " + reply->str;
      reset();
      return false;
    }
    return true;
  };
  if (!endpoint_.password.empty()) {
    std::vector<std::string> auth{"AUTH"};
    if (!endpoint_.username.empty()) auth.push_back(endpoint_.username);
    auth.push_back(endpoint_.password);
    if (!setup(std::move(auth))) return false;
  }
  if (endpoint_.db != 0 && !setup({"SELECT", std::to_string(endpoint_.db)})) return false;
  if (!sentinels_.empty()) {  // a sentinel that has not seen the failover yet names the old primary
    auto role = command({"ROLE"});
    if (!role) return false;
    if (!role->says_primary()) {
      error_ = "the Redis server at " + endpoint_.host + ":" + std::to_string(endpoint_.port) +
               " that Sentinel named is not the primary";
      reset();
      return false;
    }
  }
  return true;
}

std::optional<Reply> SyncConnection::command(const std::vector<std::string>& args) {
  if (!ctx_ && !connect()) return std::nullopt;
  ArgvView v(args);
  auto* r = static_cast<redisReply*>(redisCommandArgv(ctx_, v.argc(), v.argv.data(), v.lens.data()));
  if (!r) {
    error_ = std::string("Redis did not answer: ") + (ctx_->errstr[0] ? ctx_->errstr : "timeout");
    reset();
    return std::nullopt;
  }
  Reply out = Reply::from(r);
  freeReplyObject(r);
  if (out.is_readonly()) reset();  // a demoted primary: find the new one
  return out;
}

}  // namespace lagoon::redis
