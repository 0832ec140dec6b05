// The locator's thread talks to the sentinels with blocking hiredis, each call under a deadline: it is
// off the reactors, and a sentinel is asked about once a second.
#include "lagoon/redis/locator.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <charconv>
#include <sstream>

#include <hiredis/hiredis.h>

#include "lagoon/log/log.hpp"
#include "lagoon/metrics/registry.hpp"
#include "lagoon/util/thread_name.hpp"

namespace lagoon::redis {

namespace {

constexpr std::chrono::milliseconds kSentinelTimeout{500};  // connect, AUTH, one question
constexpr std::chrono::milliseconds kAskEvery{1000};        // the safety net under +switch-master
constexpr std::chrono::milliseconds kRetryAll{250};         // after no sentinel answered

std::string name_of(const config::HostPort& s) { return s.host + ":" + std::to_string(s.port); }

struct Sync {
  redisContext* c = nullptr;
  Sync() = default;
  Sync(const Sync&) = delete;
  Sync& operator=(const Sync&) = delete;
  ~Sync() {
    if (c) redisFree(c);
  }
};

using ReplyPtr = std::unique_ptr<redisReply, void (*)(void*)>;

ReplyPtr hold(void* r) { return ReplyPtr(static_cast<redisReply*>(r), freeReplyObject); }

bool open(Sync& ctx, const config::HostPort& s, const std::string& password, std::string& error) {
  const timeval tv{static_cast<time_t>(kSentinelTimeout.count() / 1000),
                   static_cast<suseconds_t>((kSentinelTimeout.count() % 1000) * 1000)};
  ctx.c = redisConnectWithTimeout(s.host.c_str(), s.port, tv);
  if (!ctx.c || ctx.c->err || redisSetTimeout(ctx.c, tv) != REDIS_OK) {
    error = "cannot connect to sentinel " + name_of(s) + ": " + (ctx.c ? ctx.c->errstr : "out of memory");
    return false;
  }
  if (password.empty()) return true;
  auto r = hold(redisCommand(ctx.c, "AUTH %b", password.data(), password.size()));
  if (r && r->type != REDIS_REPLY_ERROR) return true;
  error = "sentinel " + name_of(s) + " refused AUTH" + (r ? ": " + std::string(r->str, r->len) : "");
  return false;
}

std::optional<config::HostPort> ask(redisContext* c, const config::HostPort& s, const std::string& master,
                                    std::string& error) {
  auto r = hold(redisCommand(c, "SENTINEL get-master-addr-by-name %b", master.data(), master.size()));
  if (!r) {
    error = "sentinel " + name_of(s) + " did not answer: " + (c->errstr[0] ? c->errstr : "timeout");
    return std::nullopt;
  }
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
      r->element[1]->type == REDIS_REPLY_STRING) {
    const std::string_view port(r->element[1]->str, r->element[1]->len);
    unsigned p = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec == std::errc{} && end == port.data() + port.size() && p > 0 && p <= 65535)
      return config::HostPort{std::string(r->element[0]->str, r->element[0]->len), static_cast<std::uint16_t>(p)};
  }
  error = r->type == REDIS_REPLY_ERROR ? "sentinel " + name_of(s) + " refused: " + std::string(r->str, r->len)
                                       : "sentinel " + name_of(s) + " knows no primary named \"" + master + "\"";
  return std::nullopt;
}

}  // namespace

Locator::Locator(const config::Config& cfg, metrics::Registry* metrics)
    : credentials_(config::parse_redis_url(cfg.redis_url)),
      sentinels_(cfg.redis_sentinels),
      master_name_(cfg.redis_master_name),
      sentinel_password_(cfg.redis_sentinel_password) {
  if (metrics) {
    changes_ = &metrics->counter("lagoon_redis_primary_changes_total",
                                 "Times Sentinel named another Redis primary and every connection moved to it");
    sentinel_failures_ = &metrics->counter("lagoon_redis_sentinel_failures_total",
                                           "Sentinels that could not be asked or stopped answering");
    known_ = &metrics->gauge("lagoon_redis_primary_known", "1 once the Redis primary's address is known");
  }
  if (!discovers()) {
    primary_ = Primary{credentials_.host, credentials_.port, 0};
    if (known_) known_->set(1);
    return;
  }
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::runtime_error("eventfd failed");
}

Locator::~Locator() {
  stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Locator::add_listener(Listener listener) {
  std::lock_guard lock(mutex_);
  listeners_.push_back(std::move(listener));
}

void Locator::start() {
  if (!discovers()) return;
  std::call_once(started_, [this] {
    thread_ = std::thread([this] {
      util::name_this_thread("lagoon-sentinel");
      run();
    });
  });
}

void Locator::stop() noexcept {
  stopping_.store(true);
  suspect();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::optional<Locator::Primary> Locator::primary() const {
  std::lock_guard lock(mutex_);
  return primary_;
}

void Locator::suspect() noexcept {
  if (wake_fd_ < 0) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(wake_fd_, &one, sizeof one);
}

bool Locator::wait_wake(std::chrono::milliseconds timeout) {
  pollfd fd{wake_fd_, POLLIN, 0};
  const int rc = ::poll(&fd, 1, static_cast<int>(timeout.count()));
  if (rc <= 0) return false;
  std::uint64_t count = 0;
  [[maybe_unused]] const auto n = ::read(wake_fd_, &count, sizeof count);
  return true;
}

void Locator::run() {
  std::size_t next = 0;
  while (!stopping_.load()) {
    bool answered = false;
    for (std::size_t tried = 0; tried < sentinels_.size() && !stopping_.load(); ++tried) {
      const auto& s = sentinels_[next];
      next = (next + 1) % sentinels_.size();  // one that fails goes to the back of the line
      if (follow(s)) {
        answered = true;
        break;
      }
    }
    if (!answered && !stopping_.load()) wait_wake(kRetryAll);
  }
}

bool Locator::follow(const config::HostPort& sentinel) {
  std::string error;
  auto failed = [&](bool answered_before) {
    if (sentinel_failures_) sentinel_failures_->inc();
    if (!logged_failure_) log::warn("redis sentinel unavailable", {{"error", error}});
    logged_failure_ = true;
    return answered_before;
  };
  Sync query;
  if (!open(query, sentinel, sentinel_password_, error)) return failed(false);
  if (stopping_.load()) return true;  // each step may take its 500 ms: stop() should not wait for them all
  auto where = ask(query.c, sentinel, master_name_, error);
  if (!where) return failed(false);
  logged_failure_ = false;
  found(where->host, where->port, "sentinel");

  // The subscription is what makes a switch known within milliseconds; without it (it could not be set
  // up) the locator still asks every second.
  Sync sub;
  std::string sub_error;
  bool listening = !stopping_.load() && open(sub, sentinel, sentinel_password_, sub_error);
  if (listening) listening = hold(redisCommand(sub.c, "SUBSCRIBE +switch-master")) != nullptr;
  if (listening) read_switches(sub.c);
  while (!stopping_.load()) {
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {listening ? sub.c->fd : -1, POLLIN, 0}};
    const int rc = ::poll(fds, 2, static_cast<int>(kAskEvery.count()));
    if (stopping_.load()) break;
    if (rc > 0 && (fds[0].revents & POLLIN)) {
      std::uint64_t count = 0;
      [[maybe_unused]] const auto n = ::read(wake_fd_, &count, sizeof count);
    }
    if (rc > 0 && fds[1].revents) {
      if (redisBufferRead(sub.c) != REDIS_OK) {
        // A subscription that closed (the sentinel restarted, a proxy's idle timeout) is not left for
        // the one-second question alone: the next round connects afresh, to the next sentinel.
        error = "the +switch-master subscription to sentinel " + name_of(sentinel) + " closed";
        return failed(true);
      }
      read_switches(sub.c);
    }
    // After a message, a wake-up or a quiet second alike: Sentinel's answer now is the authority.
    where = ask(query.c, sentinel, master_name_, error);
    if (!where) return failed(true);
    found(where->host, where->port, "sentinel");
  }
  return true;
}

// Every +switch-master message the reader holds. One may have come in with the SUBSCRIBE reply, of which
// poll() would not tell, so this runs right after subscribing as well as after each read.
void Locator::read_switches(redisContext* sub) {
  void* reply = nullptr;
  while (redisGetReplyFromReader(sub, &reply) == REDIS_OK && reply) {
    auto r = hold(reply);
    reply = nullptr;
    // "message", "+switch-master", "<name> <old ip> <old port> <new ip> <new port>"
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[2]->type != REDIS_REPLY_STRING) continue;
    std::istringstream words(std::string(r->element[2]->str, r->element[2]->len));
    std::string name, old_host, old_port, host;
    unsigned port = 0;
    if (words >> name >> old_host >> old_port >> host >> port && name == master_name_ && port > 0 && port <= 65535)
      found(host, static_cast<std::uint16_t>(port), "+switch-master");
  }
}

void Locator::found(const std::string& host, std::uint16_t port, const char* how) {
  std::vector<Listener> listeners;
  Primary now;
  std::optional<Primary> before;
  {
    std::lock_guard lock(mutex_);
    if (primary_ && primary_->host == host && primary_->port == port) return;
    before = primary_;
    now = Primary{host, port, epoch_.load() + 1};
    primary_ = now;
    epoch_.store(now.epoch, std::memory_order_release);
    listeners = listeners_;
  }
  if (before) {
    if (changes_) changes_->inc();
    log::warn("redis primary moved", {{"from", before->host + ":" + std::to_string(before->port)},
                                      {"to", host + ":" + std::to_string(port)},
                                      {"via", how},
                                      {"master", master_name_}});
  } else {
    log::info("redis primary found", {{"at", host + ":" + std::to_string(port)}, {"master", master_name_}});
  }
  if (known_) known_->set(1);
  for (auto& l : listeners) l(now);
}

std::optional<config::HostPort> Locator::discover(const std::vector<config::HostPort>& sentinels,
                                                  const std::string& master_name, const std::string& sentinel_password,
                                                  std::string& error) {
  std::string errors;
  for (const auto& s : sentinels) {
    Sync ctx;
    std::string e;
    if (open(ctx, s, sentinel_password, e))
      if (auto where = ask(ctx.c, s, master_name, e)) return where;
    errors += (errors.empty() ? "" : "; ") + e;
  }
  error = "no sentinel named the Redis primary: " + errors;
  return std::nullopt;
}

}  // namespace lagoon::redis
